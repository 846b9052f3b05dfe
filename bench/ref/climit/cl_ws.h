/* cl_ws: the WebSocket wire format for the limit server (RFC 6455): the handshake's accept
 * key (SHA-1 and base64 from OpenSSL's libcrypto), client frames (masked, parsed in place)
 * and server frames (unmasked, header written in front of a payload). */
#ifndef CL_WS_H
#define CL_WS_H
#include <stddef.h>
#include <stdint.h>

enum { CL_WS_CONT = 0, CL_WS_TEXT = 1, CL_WS_BINARY = 2, CL_WS_CLOSE = 8, CL_WS_PING = 9,
       CL_WS_PONG = 10 };
#define CL_WS_MAX_HEADER 10
#define CL_WS_ACCEPT_LEN 28

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: out gets 28 characters and a NUL.
 * 0, or -1 if libcrypto failed. */
int cl_ws_accept(const char *key, size_t n, char out[CL_WS_ACCEPT_LEN + 1]);

/* Writes the header of an unmasked final frame of len payload bytes so that it ends at
 * payload: returns where the frame starts (payload - 2, 4 or 10). */
uint8_t *cl_ws_header_before(uint8_t *payload, int opcode, size_t len);

typedef struct cl_ws_frame {
    int fin, opcode;
    size_t hdr;     /* header bytes, mask included */
    uint64_t len;   /* payload bytes */
} cl_ws_frame;

/* Reads the frame at buf (n bytes available). 1: the whole frame is there (its payload
 * unmasked in place); 0: more bytes are needed; -1: a protocol error (no mask, reserved bits,
 * a control frame over 125 bytes or not final) or a payload above max. */
int cl_ws_parse(uint8_t *buf, size_t n, uint64_t max, cl_ws_frame *f);

#endif
