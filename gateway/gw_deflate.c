/* gw_deflate: per-worker permessage-deflate codec and negotiation helpers; see gw_deflate.h. */
#include "gw_deflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* zlib's memLevel: the deflater is one per worker, so its ~130 KiB are not worth saving. */
#define GW_DEFLATE_MEM_LEVEL 8
/* Scratch buffers larger than this are given back after use (a rare huge message must not
 * pin its size for the worker's life). */
#define GW_DEFLATE_KEEP 262144

struct gw_deflate {
    int bits;
    int zin_ready, zout_ready;
    z_stream zout;          /* deflater (raw, -bits) */
    z_stream zin;           /* inflater (raw, -15: a client may use any window) */
    unsigned char *obuf;    /* compressed output */
    size_t ocap;
    unsigned char *ibuf;    /* inflated output */
    size_t icap;
};

static int clamp_bits(int bits)
{
    return bits < GW_DEFLATE_BITS_MIN ? GW_DEFLATE_BITS_MIN
           : bits > GW_DEFLATE_BITS_MAX ? GW_DEFLATE_BITS_MAX
                                        : bits;
}

gw_deflate *gw_deflate_new(int window_bits)
{
    gw_deflate *d = calloc(1, sizeof(*d));
    if (d)
        d->bits = clamp_bits(window_bits);
    return d;
}

void gw_deflate_free(gw_deflate *d)
{
    if (!d)
        return;
    if (d->zout_ready)
        deflateEnd(&d->zout);
    if (d->zin_ready)
        inflateEnd(&d->zin);
    free(d->obuf);
    free(d->ibuf);
    free(d);
}

int gw_deflate_window_bits(const gw_deflate *d) { return d->bits; }

static int reserve(unsigned char **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    unsigned char *p = malloc(need);
    if (!p)
        return -1;
    free(*buf);
    *buf = p;
    *cap = need;
    return 0;
}

static void trim(unsigned char **buf, size_t *cap)
{
    if (*cap > GW_DEFLATE_KEEP) {
        free(*buf);
        *buf = NULL;
        *cap = 0;
    }
}

int gw_deflate_compress(gw_deflate *d, const void *in, size_t len, const unsigned char **out,
                        size_t *out_len)
{
    if (!d->zout_ready) {
        memset(&d->zout, 0, sizeof(d->zout));
        if (deflateInit2(&d->zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -d->bits,
                         GW_DEFLATE_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
            return -1;
        d->zout_ready = 1;
    }
    if (len > UINT32_MAX)
        return -1;
    /* A sync flush adds at most an empty stored block (5 bytes) to deflateBound's estimate. */
    size_t need = deflateBound(&d->zout, (uLong)len) + 16;
    if (d->ocap > GW_DEFLATE_KEEP && need <= GW_DEFLATE_KEEP)
        trim(&d->obuf, &d->ocap);
    if (reserve(&d->obuf, &d->ocap, need))
        return -1;
    d->zout.next_in = (Bytef *)in;
    d->zout.avail_in = (uInt)len;
    d->zout.next_out = d->obuf;
    d->zout.avail_out = (uInt)d->ocap;
    int r = deflate(&d->zout, Z_SYNC_FLUSH);
    size_t n = d->ocap - d->zout.avail_out;
    int ok = (r == Z_OK || r == Z_BUF_ERROR) && d->zout.avail_in == 0 && d->zout.avail_out > 0;
    /* No context takeover: every message starts from an empty window. */
    deflateReset(&d->zout);
    if (!ok || n < 4 || memcmp(d->obuf + n - 4, "\x00\x00\xff\xff", 4) != 0)
        return -1;
    *out = d->obuf;
    *out_len = n - 4; /* RFC 7692 7.2.1: the sync flush's empty block tail is not sent */
    return 0;
}

int gw_deflate_msg(gw_deflate *d, gw_msg *m)
{
    if (m->zstate != GW_MSG_Z_UNTRIED)
        return m->zstate == GW_MSG_Z_BUILT;
    m->zstate = GW_MSG_Z_PLAIN;
    const unsigned char *z;
    size_t zlen;
    if (gw_deflate_compress(d, gw_msg_payload(m), m->len, &z, &zlen))
        return 0;
    unsigned char hdr[10];
    uint8_t h = gw_frame_header(hdr + sizeof(hdr), zlen, 1);
    if ((size_t)h + zlen >= (size_t)m->hdr + m->len)
        return 0; /* not smaller: the plain frame costs the client no inflating */
    unsigned char *f = malloc(h + zlen);
    if (!f)
        return 0;
    memcpy(f, hdr + sizeof(hdr) - h, h);
    memcpy(f + h, z, zlen);
    m->zframe = f;
    m->zhdr = h;
    m->zlen = (uint32_t)zlen;
    m->zstate = GW_MSG_Z_BUILT;
    return 1;
}

gw_inflate_status gw_deflate_inflate(gw_deflate *d, const void *in, size_t len, size_t cap,
                                     const unsigned char **out, size_t *out_len)
{
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    if (!d->zin_ready) {
        memset(&d->zin, 0, sizeof(d->zin));
        if (inflateInit2(&d->zin, -15) != Z_OK)
            return GW_INFLATE_NOMEM;
        d->zin_ready = 1;
    }
    if (len > UINT32_MAX || cap >= UINT32_MAX)
        return GW_INFLATE_TOO_BIG;
    /* One byte more than the cap: output that fills it is a message over the cap, found
     * without inflating any further. */
    if (d->icap > GW_DEFLATE_KEEP && cap + 1 <= GW_DEFLATE_KEEP)
        trim(&d->ibuf, &d->icap);
    if (reserve(&d->ibuf, &d->icap, cap + 1))
        return GW_INFLATE_NOMEM;
    z_stream *z = &d->zin;
    z->next_out = d->ibuf;
    z->avail_out = (uInt)(cap + 1);
    gw_inflate_status st = GW_INFLATE_OK;
    /* The message, then the tail RFC 7692 7.2.2 says to append. */
    for (int part = 0; part < 2 && st == GW_INFLATE_OK; part++) {
        z->next_in = part ? (Bytef *)tail : (Bytef *)in;
        z->avail_in = part ? (uInt)sizeof(tail) : (uInt)len;
        if (!z->avail_in)
            continue;
        int r = inflate(z, Z_SYNC_FLUSH);
        if (z->avail_out == 0) {
            st = GW_INFLATE_TOO_BIG;
        } else if (r == Z_STREAM_END) {
            /* A final block ends the message: nothing may follow it but the tail. */
            if (part == 0 && z->avail_in)
                st = GW_INFLATE_BAD;
            break;
        } else if (r == Z_MEM_ERROR) {
            st = GW_INFLATE_NOMEM;
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            st = GW_INFLATE_BAD;
        } else if (z->avail_in) {
            st = GW_INFLATE_BAD; /* output room left but input not taken */
        }
    }
    size_t n = cap + 1 - z->avail_out;
    inflateReset(z);
    if (st != GW_INFLATE_OK)
        return st;
    *out = d->ibuf;
    *out_len = n;
    return GW_INFLATE_OK;
}

/* ---- negotiation ---- */

static const char *skip_ws(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

static const char *rtrim(const char *s, const char *end)
{
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return end;
}

/* Bytes from s to e (none when e is not after s). */
static size_t span(const char *s, const char *e) { return e > s ? (size_t)(e - s) : 0; }

static int token_is(const char *s, const char *e, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(e - s) == n && memcmp(s, word, n) == 0;
}

/* A window bits value: 8..15, possibly quoted (RFC 7692 7.1.2: the quoted form is allowed). */
static int bits_value(const char *s, const char *e)
{
    if (e - s >= 2 && *s == '"' && e[-1] == '"') {
        s++;
        e--;
    }
    /* RFC 7692 7.1.2.1: 8..15, no leading zero */
    if (e - s < 1 || e - s > 2 || *s == '0')
        return -1;
    int v = 0;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v >= 8 && v <= 15 ? v : -1;
}

static int offer_ok(const char *s, const char *end, int bits)
{
    enum { SNCT = 1, CNCT = 2, SMWB = 4, CMWB = 8 };
    unsigned seen = 0;
    while (s < end) {
        const char *pe = memchr(s, ';', span(s, end));
        if (!pe)
            pe = end;
        const char *ns = skip_ws(s, pe), *pend = rtrim(ns, pe);
        const char *eq = memchr(ns, '=', span(ns, pend));
        const char *ne = rtrim(ns, eq ? eq : pend);
        const char *vs = eq ? skip_ws(eq + 1, pend) : NULL;
        unsigned bit;
        if (token_is(ns, ne, "server_no_context_takeover")) {
            bit = SNCT;
            if (eq)
                return 0;
        } else if (token_is(ns, ne, "client_no_context_takeover")) {
            bit = CNCT;
            if (eq)
                return 0;
        } else if (token_is(ns, ne, "server_max_window_bits")) {
            bit = SMWB;
            int v = eq ? bits_value(vs, pend) : -1;
            /* We announce ours; a client that wants a smaller window cannot share the frames
             * deflated for everyone (zlib cannot go below 9 anyway). */
            if (v < 0 || v < bits)
                return 0;
        } else if (token_is(ns, ne, "client_max_window_bits")) {
            bit = CMWB;
            if (eq && bits_value(vs, pend) < 0)
                return 0;
        } else {
            return 0; /* RFC 7692 5: an offer with an unknown parameter is declined */
        }
        if (seen & bit)
            return 0;
        seen |= bit;
        s = pe + (pe < end);
    }
    return 1;
}

int gw_deflate_offer_ok(const char *header, int window_bits)
{
    if (!header)
        return 0;
    int bits = clamp_bits(window_bits);
    const char *s = header, *end = header + strlen(header);
    while (s < end) {
        const char *oe = memchr(s, ',', span(s, end));
        if (!oe)
            oe = end;
        const char *ns = skip_ws(s, oe);
        const char *semi = memchr(ns, ';', span(ns, oe));
        const char *ne = rtrim(ns, semi ? semi : oe);
        if (token_is(ns, ne, "permessage-deflate"))
            return semi ? offer_ok(semi + 1, oe, bits) : 1;
        s = oe + (oe < end);
    }
    return 0;
}

char *gw_deflate_patch_response(char *p, size_t room, int window_bits)
{
    static const char suffix[] = GW_DEFLATE_LWS_SUFFIX;
    size_t slen = sizeof(suffix) - 1;
    if (memcmp(p - slen, suffix, slen) != 0)
        return NULL;
    char params[128];
    int n = snprintf(params, sizeof(params),
                     "; server_no_context_takeover; client_no_context_takeover; "
                     "server_max_window_bits=%d\r\n",
                     clamp_bits(window_bits));
    if (n <= 0 || (size_t)n >= sizeof(params) || (size_t)n - 2 > room)
        return NULL;
    memcpy(p - 2, params, (size_t)n);
    return p - 2 + n;
}
