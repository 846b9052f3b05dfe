/* gw_deflate: permessage-deflate (RFC 7692) for the gateway, done in wsgate's own framing
 * because the gateway writes pre-built frames (lws' extension never sees them) and because lws'
 * extension keeps zlib state per connection. What is negotiated is always
 * server_no_context_takeover + client_no_context_takeover, so every message is compressed
 * and inflated on its own: one deflater and one inflater per worker serve all of its
 * connections (reset between uses), an outbound message is compressed once per worker and its
 * compressed frame shared by every compressing connection, and an idle connection holds no
 * zlib memory at all.
 *
 * Three parts: the per-worker codec (gw_deflate: lazily initialised, worker thread only), the
 * check of a client's offer, and the rewrite of the extension header lws writes into the 101
 * response (lws 4.1.6 can only echo arg-less options the client offered). The last two are
 * pure. */
#ifndef GW_DEFLATE_H
#define GW_DEFLATE_H
#include <stddef.h>

#include "gw_outq.h"

/* zlib's raw deflate cannot use a window of 2^8 (it silently uses 2^9). */
#define GW_DEFLATE_BITS_MIN 9
#define GW_DEFLATE_BITS_MAX 15

typedef struct gw_deflate gw_deflate;

/* window_bits: the server_max_window_bits announced (clamped to 9..15). NULL on allocation
 * failure. No zlib stream exists until first used. */
gw_deflate *gw_deflate_new(int window_bits);
void gw_deflate_free(gw_deflate *d);
/* The window bits actually used (what the response announces). */
int gw_deflate_window_bits(const gw_deflate *d);

/* Compresses len bytes as one message without context takeover: the DEFLATE data of RFC 7692
 * 7.2.1, the final 00 00 ff ff removed. *out points into the codec's scratch buffer, valid
 * until its next use. 0, or -1 (out of memory, zlib error). */
int gw_deflate_compress(gw_deflate *d, const void *in, size_t len, const unsigned char **out,
                        size_t *out_len);

/* Gives m its compressed frame (FIN, RSV1, text) unless it has one or was found not worth
 * compressing (the compressed form is not smaller): then nothing changes. Returns 1 when m
 * has a compressed frame now, 0 when it goes uncompressed. */
int gw_deflate_msg(gw_deflate *d, gw_msg *m);

typedef enum {
    GW_INFLATE_OK = 0,
    GW_INFLATE_TOO_BIG,  /* would exceed the cap: stopped at cap + 1 bytes */
    GW_INFLATE_BAD,      /* not valid DEFLATE data */
    GW_INFLATE_NOMEM,
} gw_inflate_status;

/* Inflates one compressed message (its frames' payload, concatenated) into at most cap
 * bytes, never producing more than cap + 1. *out points into the codec's buffer, valid until
 * its next use. */
gw_inflate_status gw_deflate_inflate(gw_deflate *d, const void *in, size_t len, size_t cap,
                                     const unsigned char **out, size_t *out_len);

/* 1 when the first permessage-deflate offer in a Sec-WebSocket-Extensions value can be
 * accepted with our response (no context takeover either way, server_max_window_bits =
 * window_bits): every parameter known, none twice, values in range, and a
 * server_max_window_bits the client demands not below ours. 0 otherwise (or no offer). */
int gw_deflate_offer_ok(const char *header, int window_bits);

/* What lws 4.1.6 writes for an accepted extension whose option table is empty, just before
 * LWS_CALLBACK_ADD_HEADERS. */
#define GW_DEFLATE_LWS_SUFFIX "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"

/* Rewrites the response header lws just wrote: if the bytes right before p are exactly
 * GW_DEFLATE_LWS_SUFFIX, steps back over its "\r\n" and appends our parameters and a new
 * "\r\n". room: bytes writable from p. Returns the new end, or NULL (the suffix is not
 * there, or no room): nothing was written. The caller guarantees that at least
 * sizeof(GW_DEFLATE_LWS_SUFFIX) - 1 bytes before p are readable. */
char *gw_deflate_patch_response(char *p, size_t room, int window_bits);

#endif
