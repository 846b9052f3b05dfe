/* Unit tests: client addresses behind proxies (gw_peer): CIDR sets, X-Forwarded-For /
 * X-Real-IP resolution against the trusted set, PROXY v1 and v2 headers. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "gw_peer.h"
#include "wsg_check.h"

static void addr_of(const char *text, uint8_t out[16])
{
    ck_assert_msg(gw_peer_parse_addr(text, strlen(text), out) == 0, "parse %s", text);
}

static const char *text_of(const uint8_t a[16])
{
    static char buf[GW_PEER_TEXT_MAX];
    gw_peer_text(a, buf);
    return buf;
}

static gw_peer_cidrs set_of(const char *list)
{
    gw_peer_cidrs s;
    char err[128] = "";
    ck_assert_msg(gw_peer_cidrs_parse(&s, list, err, sizeof(err)) == 0, "%s", err);
    return s;
}

/* The client address resolved from peer and the two headers, as text. */
static const char *resolve(const gw_peer_cidrs *t, const char *peer, const char *xff,
                           const char *xri)
{
    uint8_t p[16], out[16];
    addr_of(peer, p);
    gw_peer_resolve(t, p, xff, xri, out);
    return text_of(out);
}

START_TEST(cidr_sets)
{
    gw_peer_cidrs s = set_of(" 10.0.0.0/8, 127.0.0.2/32 ,2001:db8::/32,");
    ck_assert_int_eq(s.n, 3);
    uint8_t a[16];
    addr_of("10.200.1.1", a);
    ck_assert(gw_peer_cidrs_match(&s, a));
    addr_of("11.0.0.1", a);
    ck_assert(!gw_peer_cidrs_match(&s, a));
    addr_of("127.0.0.2", a);
    ck_assert(gw_peer_cidrs_match(&s, a));
    addr_of("127.0.0.1", a);
    ck_assert(!gw_peer_cidrs_match(&s, a));
    addr_of("2001:db8:ffff::1", a);
    ck_assert(gw_peer_cidrs_match(&s, a));
    addr_of("2001:db9::1", a);
    ck_assert(!gw_peer_cidrs_match(&s, a));
    /* the empty set matches nothing */
    gw_peer_cidrs none = set_of("none");
    ck_assert_int_eq(none.n, 0);
    ck_assert(!gw_peer_cidrs_match(&none, a));
    ck_assert_int_eq(set_of(NULL).n, 0);
    /* an IPv4 /0 is every IPv4 address and no IPv6 one */
    gw_peer_cidrs all4 = set_of("0.0.0.0/0");
    addr_of("203.0.113.9", a);
    ck_assert(gw_peer_cidrs_match(&all4, a));
    addr_of("2001:db8::1", a);
    ck_assert(!gw_peer_cidrs_match(&all4, a));

    char err[128];
    ck_assert_int_ne(gw_peer_cidrs_parse(&s, "10.0.0.0/8,nonsense", err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "nonsense"));
    ck_assert_int_ne(gw_peer_cidrs_parse(&s, "10.0.0.0/33", err, sizeof(err)), 0);
    ck_assert_int_ne(gw_peer_cidrs_parse(&s, "10.0.0.0/-1", err, sizeof(err)), 0);
    char many[64 * 12 + 16] = "";
    for (int i = 0; i <= GW_PEER_CIDRS_MAX; i++)
        strcat(many, "10.0.0.0/8,");
    ck_assert_int_ne(gw_peer_cidrs_parse(&s, many, err, sizeof(err)), 0);
}
END_TEST

START_TEST(addresses)
{
    uint8_t a[16];
    addr_of("198.18.0.1", a);
    ck_assert_str_eq(text_of(a), "198.18.0.1");
    addr_of(" 2001:DB8::1 ", a);
    ck_assert_str_eq(text_of(a), "2001:db8::1");
    addr_of("[2001:db8::2]:443", a);
    ck_assert_str_eq(text_of(a), "2001:db8::2");
    addr_of("[::1]", a);
    ck_assert_str_eq(text_of(a), "::1");
    addr_of("192.0.2.7:8080", a);
    ck_assert_str_eq(text_of(a), "192.0.2.7");
    addr_of("::ffff:192.0.2.8", a);
    ck_assert_str_eq(text_of(a), "192.0.2.8");
    const char *bad[] = {"", " ", "unknown", "1.2.3", "1.2.3.4:", "1.2.3.4:x", "1.2.3.4:123456",
                         "[::1", "[::1]x", "[1.2.3.4]", "fe80::1%eth0", "_hidden", "1.2.3.4 5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(gw_peer_parse_addr(bad[i], strlen(bad[i]), a) != 0, "accepted \"%s\"",
                      bad[i]);

    struct sockaddr_in v4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "203.0.113.5", &v4.sin_addr);
    gw_peer_from_sockaddr((struct sockaddr *)&v4, a);
    ck_assert_str_eq(text_of(a), "203.0.113.5");
    struct sockaddr_storage ss;
    gw_peer_to_sockaddr(a, &ss);
    uint8_t back[16];
    gw_peer_from_sockaddr((struct sockaddr *)&ss, back);
    ck_assert_int_eq(memcmp(a, back, 16), 0);
}
END_TEST

START_TEST(forwarded_for)
{
    gw_peer_cidrs t = set_of("127.0.0.2/32,10.0.0.0/8");
    /* an untrusted peer's headers are ignored, whatever they say */
    ck_assert_str_eq(resolve(&t, "127.0.0.1", "198.18.0.1", "198.18.0.9"), "127.0.0.1");
    ck_assert_str_eq(resolve(&t, "203.0.113.1", "10.0.0.1", NULL), "203.0.113.1");
    /* a trusted peer: the right-most entry that is not one of ours */
    ck_assert_str_eq(resolve(&t, "127.0.0.2", "198.18.0.1", NULL), "198.18.0.1");
    ck_assert_str_eq(resolve(&t, "127.0.0.2", "6.6.6.6, 198.18.0.1, 10.1.1.1", NULL),
                     "198.18.0.1"); /* the spoofed left part is never reached */
    ck_assert_str_eq(resolve(&t, "127.0.0.2", "6.6.6.6,198.18.0.1,10.1.1.1,10.2.2.2", "1.1.1.1"),
                     "198.18.0.1");
    ck_assert_str_eq(resolve(&t, "127.0.0.2", "[2001:db8::7]:1234", NULL), "2001:db8::7");
    /* every hop ours: X-Real-IP, else the left-most hop */
    ck_assert_str_eq(resolve(&t, "127.0.0.2", "10.9.9.9, 10.1.1.1", "198.18.0.3"), "198.18.0.3");
    ck_assert_str_eq(resolve(&t, "127.0.0.2", "10.9.9.9, 10.1.1.1", NULL), "10.9.9.9");
    ck_assert_str_eq(resolve(&t, "127.0.0.2", NULL, "198.18.0.4"), "198.18.0.4");
    ck_assert_str_eq(resolve(&t, "127.0.0.2", NULL, "garbage"), "127.0.0.2");
    ck_assert_str_eq(resolve(&t, "127.0.0.2", NULL, NULL), "127.0.0.2");
    /* an entry that does not parse ends the walk: nothing left of it is believed */
    ck_assert_str_eq(resolve(&t, "127.0.0.2", "198.18.0.1, junk, 10.1.1.1", NULL), "10.1.1.1");
    ck_assert_str_eq(resolve(&t, "127.0.0.2", "198.18.0.1, junk", "198.18.0.5"), "198.18.0.5");
    /* empty elements are no hop */
    ck_assert_str_eq(resolve(&t, "127.0.0.2", "198.18.0.6, ,", NULL), "198.18.0.6");
    ck_assert_str_eq(resolve(&t, "127.0.0.2", "", NULL), "127.0.0.2");
    /* no trusted proxies at all: the peer, always */
    gw_peer_cidrs none = set_of(NULL);
    ck_assert_str_eq(resolve(&none, "127.0.0.2", "198.18.0.1", "198.18.0.2"), "127.0.0.2");
}
END_TEST

static gw_peer_proxy_status parse(const void *buf, size_t len, size_t *hl, char *text)
{
    uint8_t a[16];
    int has = -1;
    gw_peer_proxy_status st = gw_peer_proxy_parse(buf, len, hl, a, &has);
    text[0] = '\0';
    if (st == GW_PEER_PROXY_OK && has)
        gw_peer_text(a, text);
    return st;
}

START_TEST(proxy_v1)
{
    char ip[GW_PEER_TEXT_MAX];
    size_t hl = 0;
    const char *h = "PROXY TCP4 198.18.0.1 10.0.0.1 56324 8080\r\nGET /ws HTTP/1.1\r\n";
    ck_assert_int_eq(parse(h, strlen(h), &hl, ip), GW_PEER_PROXY_OK);
    ck_assert_str_eq(ip, "198.18.0.1");
    ck_assert_uint_eq(hl, strlen("PROXY TCP4 198.18.0.1 10.0.0.1 56324 8080\r\n"));
    /* every prefix of a valid header asks for more */
    for (size_t i = 0; i < hl; i++)
        ck_assert_int_eq(parse(h, i, &hl, ip), GW_PEER_PROXY_MORE);
    h = "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
    ck_assert_int_eq(parse(h, strlen(h), &hl, ip), GW_PEER_PROXY_OK);
    ck_assert_str_eq(ip, "2001:db8::1");
    h = "PROXY UNKNOWN\r\n";
    ck_assert_int_eq(parse(h, strlen(h), &hl, ip), GW_PEER_PROXY_OK);
    ck_assert_str_eq(ip, ""); /* no address: the socket's peer */
    ck_assert_uint_eq(hl, strlen(h));
    h = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    ck_assert_int_eq(parse(h, strlen(h), &hl, ip), GW_PEER_PROXY_OK);

    const char *bad[] = {
        "GET /ws HTTP/1.1\r\n",                              /* no header at all */
        "PROXY TCP4 198.18.0.1 10.0.0.1 1 2\n",              /* LF without CR */
        "PROXY TCP4 198.18.0.1 10.0.0.1 1\r\n",              /* a field short */
        "PROXY TCP4 198.18.0.1 10.0.0.1 1 2 3\r\n",          /* a field too many */
        "PROXY TCP4 198.18.0.1  10.0.0.1 1 2\r\n",           /* two spaces */
        "PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",           /* family mismatch */
        "PROXY TCP6 198.18.0.1 10.0.0.1 1 2\r\n",
        "PROXY TCP4 198.18.0.1 10.0.0.1 65536 2\r\n",        /* port out of range */
        "PROXY TCP4 198.18.0.1 10.0.0.1 -1 2\r\n",
        "PROXY UDP4 198.18.0.1 10.0.0.1 1 2\r\n",            /* not a protocol of v1 */
        "PROXY TCP4 198.18.0.1 10.0.0.1 1 2\r\x01",          /* CR not followed by LF */
        "PROXY TCP4 198.18.0.1\x01 10.0.0.1 1 2\r\n",        /* a control character */
        "proxy TCP4 198.18.0.1 10.0.0.1 1 2\r\n",            /* case matters */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i], strlen(bad[i]), &hl, ip) == GW_PEER_PROXY_BAD,
                      "accepted \"%s\"", bad[i]);
    /* no CRLF within 107 bytes: refused, however it goes on */
    char longh[200];
    memset(longh, 'x', sizeof(longh));
    memcpy(longh, "PROXY UNKNOWN ", 14);
    ck_assert_int_eq(parse(longh, 106, &hl, ip), GW_PEER_PROXY_MORE);
    ck_assert_int_eq(parse(longh, 107, &hl, ip), GW_PEER_PROXY_BAD);
    ck_assert_int_eq(parse(longh, sizeof(longh), &hl, ip), GW_PEER_PROXY_BAD);
}
END_TEST

static const uint8_t SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A v2 header: ver_cmd, fam, then alen bytes of addresses (from addr, zero-padded). */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *addr, size_t addr_len,
                 size_t alen)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(alen >> 8);
    out[15] = (uint8_t)alen;
    memset(out + 16, 0, alen);
    if (addr && addr_len)
        memcpy(out + 16, addr, addr_len < alen ? addr_len : alen);
    return 16 + alen;
}

START_TEST(proxy_v2)
{
    char ip[GW_PEER_TEXT_MAX];
    size_t hl = 0;
    uint8_t b[2048];
    uint8_t a4[12] = {198, 18, 0, 1, 10, 0, 0, 1, 0x1f, 0x90, 0x1f, 0x90};
    size_t n = v2(b, 0x21, 0x11, a4, sizeof(a4), 12);
    memcpy(b + n, "GET", 3);
    ck_assert_int_eq(parse(b, n + 3, &hl, ip), GW_PEER_PROXY_OK);
    ck_assert_str_eq(ip, "198.18.0.1");
    ck_assert_uint_eq(hl, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(parse(b, i, &hl, ip), GW_PEER_PROXY_MORE);
    /* TLVs after the addresses are skipped */
    n = v2(b, 0x21, 0x11, a4, sizeof(a4), 12 + 40);
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_OK);
    ck_assert_uint_eq(hl, 16 + 52);
    /* IPv6 */
    uint8_t a6[36] = {0};
    inet_pton(AF_INET6, "2001:db8::9", a6);
    n = v2(b, 0x21, 0x21, a6, sizeof(a6), 36);
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_OK);
    ck_assert_str_eq(ip, "2001:db8::9");
    /* LOCAL (a balancer's own health check): the socket's peer */
    n = v2(b, 0x20, 0x00, NULL, 0, 0);
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_OK);
    ck_assert_str_eq(ip, "");
    ck_assert_uint_eq(hl, 16);
    n = v2(b, 0x20, 0x11, a4, sizeof(a4), 12); /* LOCAL ignores what it carries */
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_OK);
    ck_assert_str_eq(ip, "");
    /* PROXY with UNSPEC: the socket's peer as well */
    n = v2(b, 0x21, 0x00, NULL, 0, 0);
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_OK);
    ck_assert_str_eq(ip, "");

    n = v2(b, 0x11, 0x11, a4, sizeof(a4), 12); /* version 1 in a v2 header */
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_BAD);
    ck_assert_int_eq(parse(b, 13, &hl, ip), GW_PEER_PROXY_BAD); /* known from byte 13 on */
    n = v2(b, 0x22, 0x11, a4, sizeof(a4), 12); /* command 2 */
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_BAD);
    n = v2(b, 0x21, 0x11, a4, sizeof(a4), 8); /* shorter than two IPv4 addresses + ports */
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_BAD);
    n = v2(b, 0x21, 0x12, a4, sizeof(a4), 12); /* UDP */
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_BAD);
    n = v2(b, 0x21, 0x41, a4, sizeof(a4), 12); /* no such family */
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_BAD);
    /* longer than the bound: refused as soon as the length is read */
    n = v2(b, 0x21, 0x11, a4, sizeof(a4), GW_PEER_PROXY_MAX - 16 + 1);
    ck_assert_int_eq(parse(b, 16, &hl, ip), GW_PEER_PROXY_BAD);
    n = v2(b, 0x21, 0x11, a4, sizeof(a4), GW_PEER_PROXY_MAX - 16);
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_OK);
    /* a damaged signature */
    n = v2(b, 0x21, 0x11, a4, sizeof(a4), 12);
    b[7] = 'X';
    ck_assert_int_eq(parse(b, n, &hl, ip), GW_PEER_PROXY_BAD);
    ck_assert_int_eq(parse("\r\n\r\nGET", 7, &hl, ip), GW_PEER_PROXY_BAD);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gw_peer");
    TCase *tc = tcase_create("peer");
    tcase_add_test(tc, cidr_sets);
    tcase_add_test(tc, addresses);
    tcase_add_test(tc, forwarded_for);
    tcase_add_test(tc, proxy_v1);
    tcase_add_test(tc, proxy_v2);
    suite_add_tcase(s, tc);
    return wsg_check_run(s);
}
