/* lg_frame: reads one server frame for the load generator and extracts what it measures.
 *
 * The frames the load generator provokes itself have shapes it knows: the payload of a
 * broadcast Delivery it published ({"r":R,"t":T,"i":I} plus the ,"seq":N the gateway adds),
 * and wsgate's broadcast, message and publication frames whose content it wrote ("R I T",
 * "R I TARGET T", "R I SENDER T").
 * Those are recognised by a byte-exact check of the known shape plus a bounded decimal read:
 * a few dozen nanoseconds, where a full JSON parse costs a microsecond. Anything that does
 * not match exactly (another server's field order or spacing, escapes, welcome, error, pong)
 * goes through jansson, so a frame is never misread, only read more slowly. */
#ifndef LG_FRAME_H
#define LG_FRAME_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    LG_FR_BAD,        /* not a JSON object */
    LG_FR_WELCOME,
    LG_FR_ERROR,
    LG_FR_DELIVERY,   /* a business payload without "type" (the published broadcast) */
    LG_FR_BROADCAST,  /* {"type":"broadcast",...} from a client's broadcast */
    LG_FR_MESSAGE,    /* {"type":"message",...} from a send_message */
    LG_FR_PUBLICATION, /* {"type":"publication",...} from a channel publish */
    LG_FR_SUBSCRIBED, /* {"type":"subscribed",...}: a subscribe was answered */
    LG_FR_OTHER,      /* pong, sent, resync, anything else */
} lg_frame_kind;

typedef struct lg_frame {
    lg_frame_kind kind;
    int ours;        /* DELIVERY/BROADCAST/MESSAGE: the numbers below had our shape */
    int fast;        /* recognised without jansson */
    uint32_t run;
    uint32_t target; /* MESSAGE: the target; PUBLICATION: the sender */
    int64_t idx;
    int64_t t_us;    /* wall-clock time the message was due */
} lg_frame;

void lg_frame_parse(const char *buf, size_t len, lg_frame *f);

/* The content the load generator writes: "R I T" (broadcast), "R I TARGET T" (message; a
 * channel publication uses the same shape with its sender's index in place of the target).
 * Returns the number of bytes written (< cap), or -1 if cap is too small. */
int lg_frame_content_broadcast(char *out, size_t cap, uint32_t run, int64_t idx, int64_t t_us);
int lg_frame_content_message(char *out, size_t cap, uint32_t run, int64_t idx, uint32_t target,
                             int64_t t_us);

/* A client's whole text frame (RFC 6455 5.2: FIN, opcode 1, the mask bit, 7- or 16-bit
 * length), its payload masked with mask (5.3: a client masks every frame), for the load
 * generator to write to the socket itself instead of through lws_write. Returns its length
 * (<= cap), or -1 if cap is too small or len >= 65536. */
int lg_frame_ws_text(uint8_t *out, size_t cap, const char *payload, size_t len, uint32_t mask);

#endif
