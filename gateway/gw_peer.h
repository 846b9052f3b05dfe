/* gw_peer: who a client really is when it reaches the gateway through proxies. Pure logic, no
 * sockets: sets of CIDRs (the trusted proxies, the per-IP limit's exemptions), the resolution of
 * X-Forwarded-For / X-Real-IP against the trusted set, and the parsing of the PROXY protocol
 * header (v1 text and v2 binary, HAProxy's specification) that L4 load balancers put in front
 * of a connection's first bytes.
 *
 * Addresses are kept in one 16-byte form for both families: IPv6 as is, IPv4 as
 * ::ffff:a.b.c.d. All functions are reentrant; a gw_peer_cidrs is read-only once built. */
#ifndef GW_PEER_H
#define GW_PEER_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GW_PEER_CIDRS_MAX 64
/* Text form of an address: the longest IPv6 text (INET6_ADDRSTRLEN). */
#define GW_PEER_TEXT_MAX 46

typedef struct gw_peer_cidr {
    uint8_t addr[16];
    int bits; /* prefix length in the 16-byte form (IPv4 /n is 96 + n) */
} gw_peer_cidr;

typedef struct gw_peer_cidrs {
    gw_peer_cidr c[GW_PEER_CIDRS_MAX];
    size_t n;
} gw_peer_cidrs;

/* Parses "10.0.0.0/8", "::1/128" or a bare address. 0, or -1 when it is not one. */
int gw_peer_parse_cidr(const char *s, uint8_t addr[16], int *prefix_bits);
/* Parses a comma-separated list of CIDRs into set (emptied first). NULL, "" or "none" is the
 * empty set. 0, or -1 with err naming the bad item (or saying the list is too long). */
int gw_peer_cidrs_parse(gw_peer_cidrs *set, const char *list, char *err, size_t errlen);
int gw_peer_cidrs_match(const gw_peer_cidrs *set, const uint8_t addr[16]);

/* A socket address (AF_INET / AF_INET6) in the 16-byte form; all zero for anything else. */
void gw_peer_from_sockaddr(const struct sockaddr *sa, uint8_t out[16]);
/* The 16-byte form as a sockaddr_in6 (IPv4 stays v4-mapped). */
void gw_peer_to_sockaddr(const uint8_t addr[16], struct sockaddr_storage *out);
/* Parses one address ("198.18.0.1", "2001:db8::1", also "[2001:db8::1]", "[::1]:443" and
 * "1.2.3.4:80", the forms proxies write), ignoring surrounding blanks. 0 / -1. */
int gw_peer_parse_addr(const char *s, size_t len, uint8_t out[16]);
/* The address as text: dotted quad for IPv4 (also when v4-mapped), RFC 5952 for IPv6. */
void gw_peer_text(const uint8_t addr[16], char out[GW_PEER_TEXT_MAX]);

/* The client's address. peer: the TCP peer (or the PROXY header's source). Headers count only
 * when peer is in trusted: then the client is the right-most X-Forwarded-For entry that is not
 * itself trusted; with none, X-Real-IP; with no usable X-Real-IP, the left-most entry of the
 * trusted chain (every hop of it is one of ours). An entry that does not parse ends the walk
 * (what lies left of it was never written by a trusted hop). xff, xri: header values or NULL.
 * Returns 1 when a header decided, 0 when out is the peer. */
int gw_peer_resolve(const gw_peer_cidrs *trusted, const uint8_t peer[16], const char *xff,
                    const char *xri, uint8_t out[16]);

/* What the gateway knows of a client connection apart from its HTTP request, kept on the
 * connection's wsi as lws opaque user data from the accept to the WebSocket upgrade: when the
 * TCP connection was accepted (gw_accept: the handshake's clock starts there), the PROXY
 * header's source address (gw_accept) and an admission refusal to deliver once the upgrade is
 * done (gw_http, WSGATE_ADMISSION_CLOSE). Freed at the upgrade (gw_conn) or when lws destroys
 * the wsi. */
typedef struct gw_peer_note {
    int64_t accepted_us;    /* monotonic; 0: not known */
    uint8_t proxy_addr[16];
    uint8_t has_proxy_addr;
    uint8_t refused;        /* a gw_admit_result, 0: admitted */
    uint16_t retry_after_s; /* with refused */
} gw_peer_note;

/* PROXY protocol. A header is at most this long (v1: 107 bytes; v2: 16 + its length, which
 * could reach 64 KiB, but what load balancers send, TLVs included, fits far below it). */
#define GW_PEER_PROXY_MAX 536

typedef enum {
    GW_PEER_PROXY_MORE = 0, /* a valid beginning: read more (until GW_PEER_PROXY_MAX) */
    GW_PEER_PROXY_OK,       /* complete: *hdr_len bytes, *has_addr says if addr was filled */
    GW_PEER_PROXY_BAD,      /* not a PROXY header, or a malformed or oversized one */
} gw_peer_proxy_status;

/* Parses the bytes a connection began with. On OK the header is buf[0..*hdr_len) and what
 * follows is the client's own data. has_addr is 0 for v1 UNKNOWN, v2 LOCAL, and v2 families
 * other than TCP over IPv4/IPv6 (the spec says: use the socket's own addresses then). */
gw_peer_proxy_status gw_peer_proxy_parse(const uint8_t *buf, size_t len, size_t *hdr_len,
                                         uint8_t addr[16], int *has_addr);

#endif
