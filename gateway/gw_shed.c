/* gw_shed: which connections to close over the memory budget; see gw_shed.h. */
#include "gw_shed.h"

#include <stdlib.h>

typedef struct shed_item {
    size_t bytes;
    gw_conn *c;
} shed_item;

static int by_bytes_desc(const void *a, const void *b)
{
    size_t x = ((const shed_item *)a)->bytes, y = ((const shed_item *)b)->bytes;
    return x < y ? 1 : x > y ? -1 : 0;
}

size_t gw_shed_count(const size_t *bytes, size_t k, size_t mine, int64_t total, int64_t budget)
{
    if (total <= budget || total <= 0)
        return 0;
    double excess = (double)(total - budget * 9 / 10);
    double goal = excess * (double)mine / (double)total;
    double freed = 0;
    size_t i = 0;
    for (; i < k && freed < goal; i++)
        freed += (double)bytes[i];
    return i;
}

void gw_shed_run(gw_worker *w, gw_conn *conns, int64_t total, int64_t budget)
{
    if (total <= budget)
        return;
    size_t count = 0, mine = 0;
    gw_conn *c, *tmp;
    HASH_ITER(hh, conns, c, tmp)
        if (gw_conn_queued_bytes(c)) {
            count++;
            mine += gw_conn_queued_bytes(c);
        }
    if (!count)
        return;
    shed_item *items = malloc(count * sizeof(*items));
    size_t *bytes = malloc(count * sizeof(*bytes));
    if (!items || !bytes) {
        free(items);
        free(bytes);
        return;
    }
    size_t k = 0;
    HASH_ITER(hh, conns, c, tmp)
        if (gw_conn_queued_bytes(c) && k < count)
            items[k++] = (shed_item){gw_conn_queued_bytes(c), c};
    qsort(items, k, sizeof(*items), by_bytes_desc);
    for (size_t i = 0; i < k; i++)
        bytes[i] = items[i].bytes;
    size_t n = gw_shed_count(bytes, k, mine, total, budget);
    /* Closing frees the queue and changes the hash: the list was taken before. */
    for (size_t i = 0; i < n; i++)
        gw_conn_shed(w, items[i].c);
    free(bytes);
    free(items);
}
