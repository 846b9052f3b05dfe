/* rt_capture: the publish callback the router's unit tests hand to rt_batch_flush. It decodes
 * and keeps every NodeDelivery it is given (checking it names the node it was published for),
 * and can refuse every n-th publish to exercise failure paths. */
#ifndef RT_CAPTURE_H
#define RT_CAPTURE_H
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "proto/wsgate.pb-c.h"

#define RT_CAPTURE_MAX 64

typedef struct capture {
    Wsgate__NodeDelivery *nd[RT_CAPTURE_MAX];
    size_t n;
    int fail_every; /* refuse every n-th publish when > 0 */
    int calls;
} capture;

static inline int capture_fn(const char *node_id, const uint8_t *data, size_t len, void *arg)
{
    capture *c = arg;
    if (c->fail_every && ++c->calls % c->fail_every == 0)
        return -1;
    ck_assert_uint_lt(c->n, RT_CAPTURE_MAX);
    Wsgate__NodeDelivery *nd = wsgate__node_delivery__unpack(NULL, len, data);
    ck_assert_ptr_nonnull(nd);
    ck_assert_str_eq(nd->node_id, node_id);
    c->nd[c->n++] = nd;
    return 0;
}

static inline void capture_free(capture *c)
{
    for (size_t i = 0; i < c->n; i++)
        wsgate__node_delivery__free_unpacked(c->nd[i], NULL);
    c->n = 0;
}

#endif
