/* gw_batch: the batch frame a client asks for with ?batch=1 or the subprotocol wsgate.batch:
 * when several frames wait for it at write time, it gets one text frame
 * {"type":"batch","messages":[F1,F2,...]} instead, each Fi exactly the frame it would have got
 * (a JSON object: the gateway sends nothing else), in queue order. A batch is at most
 * GW_BATCH_MAX bytes of payload; a frame that does not fit with the others goes on its own,
 * unwrapped. Pure: builds into a buffer the caller owns. */
#ifndef GW_BATCH_H
#define GW_BATCH_H
#include <stddef.h>
#include <stdint.h>

#define GW_BATCH_MAX 65536

#define GW_BATCH_PREFIX "{\"type\":\"batch\",\"messages\":["
#define GW_BATCH_SUFFIX "]}"

typedef struct gw_batch {
    unsigned char *buf;
    size_t cap;    /* at most this many bytes, the closing "]}" included */
    size_t len;
    uint32_t n;    /* frames added */
} gw_batch;

/* Starts a batch in buf (cap bytes, at least the prefix and suffix). -1 if cap is too
 * small. */
int gw_batch_init(gw_batch *b, unsigned char *buf, size_t cap);
/* 1 if a frame of len bytes would still fit (with its comma and the closing "]}"). */
int gw_batch_fits(const gw_batch *b, size_t len);
/* Appends one frame: 0, or -1 when it does not fit (nothing is written then). */
int gw_batch_add(gw_batch *b, const void *frame, size_t len);
/* Closes the array and the object; returns the batch's length. */
size_t gw_batch_finish(gw_batch *b);

#endif
