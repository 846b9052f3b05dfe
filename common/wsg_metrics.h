/* wsg_metrics: counters and gauges kept as relaxed atomics (any thread may bump them, the
 * hot path never takes a lock) and rendered in Prometheus text format. A service declares a
 * static table of descriptors, one per time series; series of one metric family share a name
 * and differ by their label text, and must be adjacent in the table. */
#ifndef WSG_METRICS_H
#define WSG_METRICS_H
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include "wsg_buf.h"

typedef enum { WSG_METRIC_COUNTER, WSG_METRIC_GAUGE } wsg_metric_kind;

typedef struct wsg_metric_desc {
    const char *name;    /* "wsgate_connections_closed_total" */
    const char *labels;  /* "reason=\"auth\"" or NULL */
    wsg_metric_kind kind;
    const char *help;
} wsg_metric_desc;

typedef struct wsg_metrics {
    const wsg_metric_desc *desc;
    size_t n;
    _Atomic int64_t *vals;
} wsg_metrics;

int wsg_metrics_init(wsg_metrics *m, const wsg_metric_desc *desc, size_t n);
void wsg_metrics_free(wsg_metrics *m);

static inline void wsg_metrics_add(wsg_metrics *m, size_t id, int64_t v)
{
    atomic_fetch_add_explicit(&m->vals[id], v, memory_order_relaxed);
}
static inline void wsg_metrics_set(wsg_metrics *m, size_t id, int64_t v)
{
    atomic_store_explicit(&m->vals[id], v, memory_order_relaxed);
}
static inline int64_t wsg_metrics_get(const wsg_metrics *m, size_t id)
{
    return atomic_load_explicit(&m->vals[id], memory_order_relaxed);
}

/* Appends every series, with # HELP and # TYPE once per family. */
void wsg_metrics_render(const wsg_metrics *m, wsg_buf *out);

#endif
