/* gw_batch: batch frame building; see gw_batch.h. */
#include "gw_batch.h"

#include <string.h>

#define PREFIX_LEN (sizeof(GW_BATCH_PREFIX) - 1)
#define SUFFIX_LEN (sizeof(GW_BATCH_SUFFIX) - 1)

int gw_batch_init(gw_batch *b, unsigned char *buf, size_t cap)
{
    if (cap < PREFIX_LEN + SUFFIX_LEN)
        return -1;
    b->buf = buf;
    b->cap = cap;
    memcpy(buf, GW_BATCH_PREFIX, PREFIX_LEN);
    b->len = PREFIX_LEN;
    b->n = 0;
    return 0;
}

int gw_batch_fits(const gw_batch *b, size_t len)
{
    size_t need = (b->n ? 1 : 0) + SUFFIX_LEN;
    return len <= b->cap && b->len + need <= b->cap - len;
}

int gw_batch_add(gw_batch *b, const void *frame, size_t len)
{
    if (!gw_batch_fits(b, len))
        return -1;
    if (b->n)
        b->buf[b->len++] = ',';
    if (len)
        memcpy(b->buf + b->len, frame, len);
    b->len += len;
    b->n++;
    return 0;
}

size_t gw_batch_finish(gw_batch *b)
{
    memcpy(b->buf + b->len, GW_BATCH_SUFFIX, SUFFIX_LEN);
    b->len += SUFFIX_LEN;
    return b->len;
}
