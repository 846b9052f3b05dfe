/* gw_outq: a growable ring of message pointers; see gw_outq.h. */
#include "gw_outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wsg_stream.h"

/* Server frames are never masked and never fragmented here: FIN + text opcode, then the
 * length in 7, 7+16 or 7+64 bits. lws_write() would build the same header on every write;
 * building it once lets one buffer serve every connection and lets frames be batched. */
uint8_t gw_frame_header(unsigned char *end, uint64_t len, int compressed)
{
    unsigned char h[10];
    uint8_t n;
    h[0] = compressed ? 0xc1 : 0x81;
    if (len < 126) {
        h[1] = (unsigned char)len;
        n = 2;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        n = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
        n = 10;
    }
    memcpy(end - n, h, n);
    return n;
}

gw_msg *gw_msg_new_in(const void *payload, size_t len, int64_t created_us, unsigned kind,
                      const char *name, uint64_t seq, uint64_t epoch)
{
    _Static_assert(LWS_PRE >= 10, "the frame header lives in the LWS_PRE headroom");
    size_t nlen = name ? strlen(name) : 0;
    if (len > UINT32_MAX || nlen > WSG_STREAM_NAME_MAX || kind > UINT8_MAX)
        return NULL;
    gw_msg *m = malloc(sizeof(*m) + LWS_PRE + len + nlen + 1);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = (uint32_t)len;
    m->created_us = created_us;
    m->seq = seq;
    m->epoch = epoch;
    m->kind = (uint8_t)kind;
    m->hdr = gw_frame_header(m->buf + LWS_PRE, len, 0);
    m->zstate = GW_MSG_Z_UNTRIED;
    m->zhdr = 0;
    m->zlen = 0;
    m->zframe = NULL;
    if (len)
        memcpy(m->buf + LWS_PRE, payload, len);
    if (nlen)
        memcpy(m->buf + LWS_PRE + len, name, nlen);
    m->buf[LWS_PRE + len + nlen] = 0;
    return m;
}

gw_msg *gw_msg_new(const void *payload, size_t len, int64_t created_us)
{
    return gw_msg_new_in(payload, len, created_us, WSG_STREAM_NONE, NULL, 0, 0);
}

void gw_msg_unref(gw_msg *m)
{
    if (m && --m->refs == 0) {
        free(m->zframe);
        free(m);
    }
}

static int grow(gw_outq *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : 4;
    gw_outq_ent *ring = malloc(sizeof(*ring) * cap);
    if (!ring)
        return -1;
    for (uint32_t i = 0; i < q->count; i++)
        ring[i] = q->ring[(q->head + i) % q->cap];
    free(q->ring);
    q->ring = ring;
    q->head = 0;
    q->cap = cap;
    return 0;
}

gw_outq_status gw_outq_push(gw_outq *q, gw_msg *m, size_t max_bytes, int64_t queued_us)
{
    if (q->count && q->bytes + m->len > max_bytes)
        return GW_OUTQ_FULL;
    if (q->count == q->cap && grow(q))
        return GW_OUTQ_NOMEM;
    q->ring[(q->head + q->count) % q->cap] = (gw_outq_ent){m, queued_us};
    q->count++;
    q->bytes += m->len;
    gw_msg_ref(m);
    return GW_OUTQ_OK;
}

gw_msg *gw_outq_peek(const gw_outq *q)
{
    return q->count ? q->ring[q->head].m : NULL;
}

void gw_outq_pop(gw_outq *q)
{
    if (!q->count)
        return;
    gw_msg *m = q->ring[q->head].m;
    q->head = (q->head + 1) % q->cap;
    q->count--;
    q->bytes -= m->len;
    gw_msg_unref(m);
    /* A connection that has caught up keeps its first small ring (it is likely to get the
     * next message soon: a malloc/free per delivery otherwise); a grown one is returned. */
    if (q->count == 0 && q->cap > 4)
        gw_outq_trim(q);
}

void gw_outq_trim(gw_outq *q)
{
    if (q->count)
        return;
    free(q->ring);
    q->ring = NULL;
    q->cap = q->head = 0;
}

void gw_outq_clear(gw_outq *q)
{
    while (q->count)
        gw_outq_pop(q);
    free(q->ring);
    memset(q, 0, sizeof(*q));
}

gw_outq_wstatus gw_outq_write(const gw_outq *q, uint32_t max_frames, size_t max_bytes,
                              gw_outq_frame_fn frame, gw_outq_writev_fn write, void *ctx,
                              uint32_t *done, size_t *partial)
{
    uint32_t want = q->count < max_frames ? q->count : max_frames;
    struct iovec iov[GW_OUTQ_IOV];
    int n = 0;
    size_t offered = 0;
    *done = 0;
    *partial = 0;
    for (uint32_t i = 0; i < want && n < GW_OUTQ_IOV && offered < max_bytes; i++, n++) {
        size_t len;
        const unsigned char *f = frame(ctx, gw_outq_at(q, i), &len);
        if (n && offered + len > max_bytes)
            break; /* the first frame always goes, a later one only if it fits */
        iov[n].iov_base = (void *)f;
        iov[n].iov_len = len;
        offered += len;
    }
    if (!n)
        return GW_OUTQ_W_DONE;
    ssize_t took = write(ctx, iov, n);
    if (took < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return GW_OUTQ_W_FULL;
        return GW_OUTQ_W_ERROR;
    }
    /* The frames the kernel took, the last one perhaps only in part. */
    size_t left = (size_t)took;
    for (int k = 0; k < n && left; k++) {
        if (left < iov[k].iov_len) {
            *partial = left;
            break;
        }
        left -= iov[k].iov_len;
        (*done)++;
    }
    return (size_t)took < offered ? GW_OUTQ_W_FULL : GW_OUTQ_W_DONE;
}
