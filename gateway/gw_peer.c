/* gw_peer: trusted proxies, forwarded-for headers, PROXY protocol headers; see gw_peer.h. */
#include "gw_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void from_v4(const void *in4, uint8_t out[16])
{
    memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, in4, 4);
}

static int is_v4_mapped(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, 12) == 0;
}

int gw_peer_parse_cidr(const char *s, uint8_t addr[16], int *prefix_bits)
{
    char buf[INET6_ADDRSTRLEN + 8];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n + 1);
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1 || slash[1] == '-' || slash[1] == '+')
            return -1;
    }
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        if (bits < 0)
            bits = 32;
        if (bits > 32)
            return -1;
        from_v4(&v4, addr);
        *prefix_bits = (int)bits + 96;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &v6) == 1) {
        if (bits < 0)
            bits = 128;
        if (bits > 128)
            return -1;
        memcpy(addr, &v6, 16);
        *prefix_bits = (int)bits;
        return 0;
    }
    return -1;
}

int gw_peer_cidrs_parse(gw_peer_cidrs *set, const char *list, char *err, size_t errlen)
{
    set->n = 0;
    if (!list || !strcmp(list, "none"))
        return 0;
    const char *p = list;
    while (*p) {
        size_t skip = strspn(p, ", \t");
        p += skip;
        size_t len = strcspn(p, ",");
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (!len)
            continue;
        char item[INET6_ADDRSTRLEN + 8];
        if (set->n == GW_PEER_CIDRS_MAX) {
            snprintf(err, errlen, "at most %d CIDRs", GW_PEER_CIDRS_MAX);
            return -1;
        }
        gw_peer_cidr *c = &set->c[set->n];
        if (len >= sizeof(item)) {
            snprintf(err, errlen, "\"%.*s...\" is not a CIDR", 40, p);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (gw_peer_parse_cidr(item, c->addr, &c->bits)) {
            snprintf(err, errlen, "\"%s\" is not a CIDR", item);
            return -1;
        }
        set->n++;
        p += len;
    }
    return 0;
}

static int cidr_match(const gw_peer_cidr *c, const uint8_t a[16])
{
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, a, (size_t)full) != 0)
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

int gw_peer_cidrs_match(const gw_peer_cidrs *set, const uint8_t addr[16])
{
    for (size_t i = 0; i < set->n; i++)
        if (cidr_match(&set->c[i], addr))
            return 1;
    return 0;
}

void gw_peer_from_sockaddr(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa && sa->sa_family == AF_INET)
        from_v4(&((const struct sockaddr_in *)(const void *)sa)->sin_addr, out);
    else if (sa && sa->sa_family == AF_INET6)
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
}

void gw_peer_to_sockaddr(const uint8_t addr[16], struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)out;
    s6->sin6_family = AF_INET6;
    memcpy(&s6->sin6_addr, addr, 16);
}

int gw_peer_parse_addr(const char *s, size_t len, uint8_t out[16])
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    char buf[INET6_ADDRSTRLEN];
    if (len && s[0] == '[') {
        /* "[v6]" or "[v6]:port" */
        const char *close = memchr(s, ']', len);
        if (!close)
            return -1;
        size_t after = len - (size_t)(close - s) - 1;
        if (after && (close[1] != ':' || after < 2 || after > 6 ||
                      strspn(close + 2, "0123456789") < after - 1))
            return -1;
        s++;
        len = (size_t)(close - s);
        if (!len || len >= sizeof(buf))
            return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        struct in6_addr v6;
        if (inet_pton(AF_INET6, buf, &v6) != 1)
            return -1;
        memcpy(out, &v6, 16);
        return 0;
    }
    if (!len || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct in6_addr v6;
    if (inet_pton(AF_INET6, buf, &v6) == 1) {
        memcpy(out, &v6, 16);
        return 0;
    }
    /* "a.b.c.d" or "a.b.c.d:port" */
    char *colon = strchr(buf, ':');
    if (colon) {
        size_t plen = strlen(colon + 1);
        if (plen < 1 || plen > 5 || strspn(colon + 1, "0123456789") != plen)
            return -1;
        *colon = '\0';
    }
    struct in_addr v4;
    if (inet_pton(AF_INET, buf, &v4) != 1)
        return -1;
    from_v4(&v4, out);
    return 0;
}

void gw_peer_text(const uint8_t addr[16], char out[GW_PEER_TEXT_MAX])
{
    if (is_v4_mapped(addr)) {
        if (!inet_ntop(AF_INET, addr + 12, out, GW_PEER_TEXT_MAX))
            out[0] = '\0';
    } else if (!inet_ntop(AF_INET6, addr, out, GW_PEER_TEXT_MAX)) {
        out[0] = '\0';
    }
}

int gw_peer_resolve(const gw_peer_cidrs *trusted, const uint8_t peer[16], const char *xff,
                    const char *xri, uint8_t out[16])
{
    memcpy(out, peer, 16);
    if (!trusted->n || !gw_peer_cidrs_match(trusted, peer))
        return 0; /* anybody can write a header: only our own proxies are believed */
    int chain = 0; /* out holds the left-most trusted entry seen so far */
    if (xff) {
        const char *end = xff + strlen(xff);
        while (end > xff) {
            const char *start = end;
            while (start > xff && start[-1] != ',')
                start--;
            size_t len = (size_t)(end - start);
            end = start > xff ? start - 1 : xff;
            size_t blanks = strspn(start, " \t");
            if (blanks >= len) {
                if (start == xff)
                    break;
                continue; /* "a,,b": an empty element is no hop */
            }
            uint8_t a[16];
            if (gw_peer_parse_addr(start, len, a))
                break;
            if (!gw_peer_cidrs_match(trusted, a)) {
                memcpy(out, a, 16);
                return 1;
            }
            memcpy(out, a, 16);
            chain = 1;
            if (start == xff)
                break;
        }
    }
    uint8_t a[16];
    if (xri && !gw_peer_parse_addr(xri, strlen(xri), a)) {
        memcpy(out, a, 16);
        return 1;
    }
    return chain;
}

/* ---- PROXY protocol ---- */

static const uint8_t V2_SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
#define V1_MAX 107 /* "PROXY TCP6 " + two full IPv6 + two ports + CRLF */

/* A port: 1 to 5 digits, at most 65535. */
static int v1_port(const char *s, size_t len)
{
    if (len < 1 || len > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 65535 ? 0 : -1;
}

static gw_peer_proxy_status parse_v1(const uint8_t *buf, size_t len, size_t *hdr_len,
                                     uint8_t addr[16], int *has_addr)
{
    static const char magic[] = "PROXY ";
    size_t m = len < 6 ? len : 6;
    if (memcmp(buf, magic, m) != 0)
        return GW_PEER_PROXY_BAD;
    size_t lim = len < V1_MAX ? len : V1_MAX;
    size_t eol = 0;
    for (size_t i = 0; i < lim; i++) {
        if (buf[i] == '\r') {
            if (i + 1 == len)
                return GW_PEER_PROXY_MORE;
            if (buf[i + 1] != '\n')
                return GW_PEER_PROXY_BAD;
            eol = i;
            break;
        }
        if (buf[i] < 0x20 || buf[i] > 0x7e)
            return GW_PEER_PROXY_BAD;
    }
    if (!eol)
        return len < V1_MAX ? GW_PEER_PROXY_MORE : GW_PEER_PROXY_BAD;
    char line[V1_MAX + 1];
    memcpy(line, buf, eol);
    line[eol] = '\0';
    *hdr_len = eol + 2;
    *has_addr = 0;
    const char *p = line + 6;
    if (!strncmp(p, "UNKNOWN", 7) && (p[7] == '\0' || p[7] == ' '))
        return GW_PEER_PROXY_OK; /* the sender does not know: the socket's peer it is */
    int family;
    if (!strncmp(p, "TCP4 ", 5))
        family = AF_INET;
    else if (!strncmp(p, "TCP6 ", 5))
        family = AF_INET6;
    else
        return GW_PEER_PROXY_BAD;
    p += 5;
    /* exactly: src SP dst SP sport SP dport, single spaces */
    const char *f[4];
    size_t fl[4];
    for (int i = 0; i < 4; i++) {
        f[i] = p;
        fl[i] = strcspn(p, " ");
        if (!fl[i])
            return GW_PEER_PROXY_BAD;
        p += fl[i];
        if (i < 3) {
            if (*p != ' ')
                return GW_PEER_PROXY_BAD;
            p++;
        }
    }
    if (*p)
        return GW_PEER_PROXY_BAD;
    uint8_t a[16];
    for (int i = 0; i < 2; i++) {
        char ab[INET6_ADDRSTRLEN];
        if (fl[i] >= sizeof(ab))
            return GW_PEER_PROXY_BAD;
        memcpy(ab, f[i], fl[i]);
        ab[fl[i]] = '\0';
        if (family == AF_INET) {
            struct in_addr v4;
            if (inet_pton(AF_INET, ab, &v4) != 1)
                return GW_PEER_PROXY_BAD;
            if (i == 0)
                from_v4(&v4, a);
        } else {
            struct in6_addr v6;
            if (inet_pton(AF_INET6, ab, &v6) != 1)
                return GW_PEER_PROXY_BAD;
            if (i == 0)
                memcpy(a, &v6, 16);
        }
    }
    if (v1_port(f[2], fl[2]) || v1_port(f[3], fl[3]))
        return GW_PEER_PROXY_BAD;
    memcpy(addr, a, 16);
    *has_addr = 1;
    return GW_PEER_PROXY_OK;
}

static gw_peer_proxy_status parse_v2(const uint8_t *buf, size_t len, size_t *hdr_len,
                                     uint8_t addr[16], int *has_addr)
{
    size_t m = len < sizeof(V2_SIG) ? len : sizeof(V2_SIG);
    if (memcmp(buf, V2_SIG, m) != 0)
        return GW_PEER_PROXY_BAD;
    if (len >= 13 && (buf[12] >> 4) != 2)
        return GW_PEER_PROXY_BAD; /* version 2 only */
    if (len >= 13 && (buf[12] & 0x0f) > 1)
        return GW_PEER_PROXY_BAD; /* LOCAL or PROXY */
    if (len < 16)
        return GW_PEER_PROXY_MORE;
    size_t total = 16 + ((size_t)buf[14] << 8 | buf[15]);
    if (total > GW_PEER_PROXY_MAX)
        return GW_PEER_PROXY_BAD;
    if (len < total)
        return GW_PEER_PROXY_MORE;
    int cmd = buf[12] & 0x0f, fam = buf[13] >> 4, proto = buf[13] & 0x0f;
    size_t alen = total - 16;
    if (fam > 3 || proto > 2)
        return GW_PEER_PROXY_BAD;
    if ((fam == 1 && alen < 12) || (fam == 2 && alen < 36) || (fam == 3 && alen < 216))
        return GW_PEER_PROXY_BAD; /* shorter than the addresses it announces */
    *hdr_len = total;
    *has_addr = 0;
    if (cmd == 0)
        return GW_PEER_PROXY_OK; /* LOCAL: the balancer's own health check; its peer it is */
    if ((fam == 1 || fam == 2) && proto == 2)
        return GW_PEER_PROXY_BAD; /* a datagram's addresses on a stream listener */
    if (fam == 1 && proto == 1) {
        from_v4(buf + 16, addr);
        *has_addr = 1;
    } else if (fam == 2 && proto == 1) {
        memcpy(addr, buf + 16, 16);
        *has_addr = 1;
    }
    /* UNSPEC or UNIX: the spec says to use the connection's own endpoints */
    return GW_PEER_PROXY_OK;
}

gw_peer_proxy_status gw_peer_proxy_parse(const uint8_t *buf, size_t len, size_t *hdr_len,
                                         uint8_t addr[16], int *has_addr)
{
    if (len == 0)
        return GW_PEER_PROXY_MORE;
    if (buf[0] == 'P')
        return parse_v1(buf, len, hdr_len, addr, has_addr);
    if (buf[0] == V2_SIG[0])
        return parse_v2(buf, len, hdr_len, addr, has_addr);
    return GW_PEER_PROXY_BAD;
}
