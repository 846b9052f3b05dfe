/* gw_outq: what a connection still has to send. A gw_msg is one server->client text
 * message, framed once when it is made: the WebSocket frame header sits in the headroom right
 * in front of the payload, so the same bytes go to every connection (a broadcast is one
 * gw_msg per worker shared through a reference count) and several queued frames can be
 * written to a socket in one send; its permessage-deflate form is made the same way, once, when
 * a compressing connection first needs it (gw_deflate_msg). A gw_outq is a connection's FIFO of
 * such messages, bounded in bytes so that a client that reads too slowly is disconnected
 * instead of growing the gateway's memory. Both belong to one worker thread: nothing here is
 * thread-safe, and a gw_msg must be handed to its worker (through the worker's queue) before
 * anyone else touches it. */
#ifndef GW_OUTQ_H
#define GW_OUTQ_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <libwebsockets.h>

typedef struct gw_msg {
    uint32_t refs;
    uint32_t len;        /* payload bytes */
    int64_t created_us;  /* when the message entered the cluster (0: unknown) */
    uint64_t seq;        /* position in its stream; 0: not in a stream */
    uint64_t epoch;      /* history epoch of seq */
    uint8_t kind;        /* the stream's kind (wsg_stream_kind); WSG_STREAM_NONE: none */
    uint8_t hdr;         /* frame header bytes, just before the payload */
    /* The permessage-deflate form (gw_deflate_msg), built the first time a compressing
     * connection writes the message and shared by all of them: */
    uint8_t zstate;      /* gw_msg_zstate */
    uint8_t zhdr;        /* its frame header bytes */
    uint32_t zlen;       /* its compressed payload bytes */
    unsigned char *zframe; /* header + compressed payload (owned), FIN + RSV1 + text */
    /* LWS_PRE bytes of headroom (ending with the header), the payload, then the stream's name
     * (NUL-terminated; empty for unnamed kinds and messages outside any stream). */
    unsigned char buf[];
} gw_msg;

/* One reference, held by the caller, outside any stream. NULL on allocation failure. */
gw_msg *gw_msg_new(const void *payload, size_t len, int64_t created_us);
/* The same for seq of stream (kind, name) in a history epoch. name: NULL or "" for an unnamed
 * kind; at most WSG_STREAM_NAME_MAX bytes (NULL beyond). */
gw_msg *gw_msg_new_in(const void *payload, size_t len, int64_t created_us, unsigned kind,
                      const char *name, uint64_t seq, uint64_t epoch);
static inline unsigned char *gw_msg_payload(gw_msg *m) { return m->buf + LWS_PRE; }
static inline const char *gw_msg_stream_name(const gw_msg *m)
{
    return (const char *)m->buf + LWS_PRE + m->len;
}
/* The whole WebSocket frame (an unmasked, final text frame: RFC 6455 5.2) and its length. */
static inline const unsigned char *gw_msg_frame(const gw_msg *m, size_t *len)
{
    *len = (size_t)m->hdr + m->len;
    return m->buf + LWS_PRE - m->hdr;
}
typedef enum {
    GW_MSG_Z_UNTRIED = 0,
    GW_MSG_Z_BUILT,     /* zframe holds the compressed frame */
    GW_MSG_Z_PLAIN,     /* compressing would not make it smaller (or failed): send it as is */
} gw_msg_zstate;
/* The compressed frame and its length (zstate GW_MSG_Z_BUILT only). */
static inline const unsigned char *gw_msg_zframe(const gw_msg *m, size_t *len)
{
    *len = (size_t)m->zhdr + m->zlen;
    return m->zframe;
}
/* Writes the header of an unmasked, final text frame of len payload bytes so that it ends at
 * end (at most 10 bytes before it), with RSV1 (a permessage-deflate compressed message) when
 * compressed. Returns its length. */
uint8_t gw_frame_header(unsigned char *end, uint64_t len, int compressed);
static inline void gw_msg_ref(gw_msg *m) { m->refs++; }
void gw_msg_unref(gw_msg *m);

/* One queued message and when it was queued (monotonic us, for the time it waits in the
 * queue: wsgate_stage_latency_seconds{stage="socket"}). */
typedef struct gw_outq_ent {
    gw_msg *m;
    int64_t queued_us;
} gw_outq_ent;

/* Members are private to gw_outq.c; the struct is public only so it can live inside the
 * per-connection state without another allocation. A queue that was never used owns no
 * memory; once used it keeps a ring of four entries until it is trimmed or cleared. */
typedef struct gw_outq {
    gw_outq_ent *ring;
    uint32_t head, count, cap;
    size_t bytes;
} gw_outq;

typedef enum {
    GW_OUTQ_OK = 0,
    GW_OUTQ_FULL = 1,   /* over the byte bound: the consumer is too slow */
    GW_OUTQ_NOMEM = -1,
} gw_outq_status;

/* Appends m, queued at queued_us (monotonic), taking a reference of its own. One message is
 * always accepted into an empty queue, whatever its size, so a large delivery is never refused
 * to an idle connection. */
gw_outq_status gw_outq_push(gw_outq *q, gw_msg *m, size_t max_bytes, int64_t queued_us);
/* Oldest message, still queued (NULL if empty). */
gw_msg *gw_outq_peek(const gw_outq *q);
/* The i-th oldest message (i < count). */
static inline gw_msg *gw_outq_at(const gw_outq *q, uint32_t i)
{
    return q->ring[(q->head + i) % q->cap].m;
}
/* When the i-th oldest message was queued. */
static inline int64_t gw_outq_queued_us(const gw_outq *q, uint32_t i)
{
    return q->ring[(q->head + i) % q->cap].queued_us;
}
/* Drops the oldest message. */
void gw_outq_pop(gw_outq *q);
/* Drops everything and frees the ring. */
void gw_outq_clear(gw_outq *q);
/* Frees the ring of an empty queue (a non-empty one is left as it is): the idle sweep's, so
 * that a connection that gets nothing for a while holds no queue memory. */
void gw_outq_trim(gw_outq *q);
static inline int gw_outq_empty(const gw_outq *q) { return q->count == 0; }
/* ---- writing a queue to a socket ----
 * A connection writes its queue's frames straight from their shared buffers with one
 * writev(2) for several of them. The kernel may take part of a frame: *partial says how much,
 * so that its rest can be written exactly from there, before anything else (gw_conn hands it
 * to lws). */

/* The bytes of message m on this connection (its plain or its compressed frame): the same
 * bytes every time for one message and connection, which is what makes *partial meaningful. */
typedef const unsigned char *(*gw_outq_frame_fn)(void *ctx, gw_msg *m, size_t *len);
/* Like writev(2) on a non-blocking socket: bytes taken (> 0), or -1 with errno (EAGAIN,
 * EWOULDBLOCK, EINTR: nothing taken, try when writable; anything else: the socket failed). */
typedef ssize_t (*gw_outq_writev_fn)(void *ctx, const struct iovec *iov, int iovcnt);

/* Frames gathered in one write call at most. */
#define GW_OUTQ_IOV 64

typedef enum {
    GW_OUTQ_W_DONE = 0,   /* everything offered was taken */
    GW_OUTQ_W_FULL = 1,   /* the kernel took less: write again when writable */
    GW_OUTQ_W_ERROR = -1, /* the socket failed (errno) */
} gw_outq_wstatus;

/* One write call: the oldest frames, whole, at most max_frames of them and about max_bytes
 * (the first always, a later one only if it fits). Pops nothing: *done is the number of
 * oldest frames the kernel took completely (the caller pops and counts them), *partial how
 * many bytes of the next one it took. */
gw_outq_wstatus gw_outq_write(const gw_outq *q, uint32_t max_frames, size_t max_bytes,
                              gw_outq_frame_fn frame, gw_outq_writev_fn write, void *ctx,
                              uint32_t *done, size_t *partial);

#endif
