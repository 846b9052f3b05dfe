/* wsg_metrics: counters, gauges and histograms kept as relaxed atomics (any thread may bump
 * them, the hot path never takes a lock) and rendered in Prometheus text format. A service
 * declares a static table of descriptors, one per time series; series of one metric family
 * share a name and differ by their label text, and must be adjacent in the table.
 *
 * A histogram counts integer observations in a unit of the caller's choosing (microseconds,
 * say) and is rendered in the base unit (seconds) that its name promises: each bound and the
 * sum are divided by `per_unit`, a power of ten, and printed as exact decimals. Its buckets
 * are kept non-cumulative and summed at render time, so `_count` always equals the `+Inf`
 * bucket even while other threads observe; `_sum` may lag them by the observations in
 * flight.
 *
 * Shards: a series bumped on every delivery by several threads would bounce one cache line
 * between them with each atomic add. A thread that bumps often takes its own shard
 * (wsg_metrics_shard_new) and counts there with plain loads and stores; render and
 * wsg_metrics_value/count sum the shared values and every shard's, so the text is the same
 * whichever way a series was bumped. */
#ifndef WSG_METRICS_H
#define WSG_METRICS_H
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include "wsg_buf.h"

typedef enum { WSG_METRIC_COUNTER, WSG_METRIC_GAUGE, WSG_METRIC_HISTOGRAM } wsg_metric_kind;

typedef struct wsg_metric_buckets {
    const int64_t *le; /* ascending upper bounds (inclusive), in the observed unit */
    size_t n;          /* bounds, without the implicit +Inf */
    int64_t per_unit;  /* observed units per rendered unit: 1000000 for us -> seconds */
} wsg_metric_buckets;

typedef struct wsg_metric_desc {
    const char *name;    /* "wsgate_connections_closed_total" */
    const char *labels;  /* "reason=\"auth\"" or NULL */
    wsg_metric_kind kind;
    const char *help;
} wsg_metric_desc;

typedef struct wsg_metrics_shard wsg_metrics_shard;

typedef struct wsg_metrics {
    const wsg_metric_desc *desc;
    const wsg_metric_buckets *const *bounds; /* per descriptor, histograms only */
    size_t n;
    _Atomic int64_t *vals;   /* one per descriptor: the value, or a histogram's sum */
    size_t *first_bucket;    /* per descriptor: its first slot in `buckets` (histograms) */
    _Atomic int64_t *buckets;
    size_t nbuckets;
    _Atomic(wsg_metrics_shard *) shards; /* a list, pushed to, freed with m */
} wsg_metrics;

/* One thread's private copy of every value and bucket (its own cache lines). Only its owner
 * writes it; the scrape reads it with relaxed loads, so the stores are atomic but unlocked. */
struct wsg_metrics_shard {
    _Atomic int64_t *vals;    /* as wsg_metrics.vals */
    _Atomic int64_t *buckets; /* as wsg_metrics.buckets */
    const wsg_metrics *m;
    wsg_metrics_shard *next;
};

/* For a table without histograms. 0, or -1 when out of memory or the table has one. */
int wsg_metrics_init(wsg_metrics *m, const wsg_metric_desc *desc, size_t n);
/* bounds[i] gives histogram i its buckets (NULL for the other kinds); both tables must outlive
 * m. 0, or -1 when out of memory or a histogram's buckets are missing or malformed (none,
 * bounds not ascending, per_unit not a power of ten). */
int wsg_metrics_init_hist(wsg_metrics *m, const wsg_metric_desc *desc,
                          const wsg_metric_buckets *const *bounds, size_t n);
/* Safe on a zeroed or already freed struct. */
void wsg_metrics_free(wsg_metrics *m);

static inline void wsg_metrics_add(wsg_metrics *m, size_t id, int64_t v)
{
    atomic_fetch_add_explicit(&m->vals[id], v, memory_order_relaxed);
}
static inline void wsg_metrics_set(wsg_metrics *m, size_t id, int64_t v)
{
    atomic_store_explicit(&m->vals[id], v, memory_order_relaxed);
}
/* A counter's or gauge's value; a histogram's sum, in the observed unit. */
static inline int64_t wsg_metrics_get(const wsg_metrics *m, size_t id)
{
    return atomic_load_explicit(&m->vals[id], memory_order_relaxed);
}

/* A new shard of m, counted in its renders until wsg_metrics_free(m) frees it; any thread.
 * NULL when out of memory. */
wsg_metrics_shard *wsg_metrics_shard_new(wsg_metrics *m);

/* The shard's owner thread only: no lock prefix, no line shared with another shard. */
static inline void wsg_metrics_shard_add(wsg_metrics_shard *s, size_t id, int64_t v)
{
    atomic_store_explicit(&s->vals[id], atomic_load_explicit(&s->vals[id], memory_order_relaxed) + v,
                          memory_order_relaxed);
}
/* As wsg_metrics_observe, into the shard (its owner thread only). */
void wsg_metrics_shard_observe(wsg_metrics_shard *s, size_t id, int64_t v);

/* A counter's or gauge's value (a histogram's sum) with every shard's part: what render
 * prints. wsg_metrics_get reads the shared part only (cheap, for series never sharded). */
int64_t wsg_metrics_value(const wsg_metrics *m, size_t id);

/* Counts one observation v (in the observed unit) in histogram `id`. */
void wsg_metrics_observe(wsg_metrics *m, size_t id, int64_t v);
/* Observations in histogram `id` so far, shards included. */
int64_t wsg_metrics_count(const wsg_metrics *m, size_t id);

/* Appends every series, with # HELP and # TYPE once per family. */
void wsg_metrics_render(const wsg_metrics *m, wsg_buf *out);

/* Appends the calling process's standard series, named as Prometheus client libraries name
 * them: process_resident_memory_bytes, process_open_fds, process_max_fds,
 * process_cpu_seconds_total, process_start_time_seconds, and wsgate_heap_bytes{state} (glibc
 * only: wsg_heap). Read from /proc, getrlimit and the allocator at
 * each call (a scrape); a series whose source cannot be read is left out. */
void wsg_metrics_render_process(wsg_buf *out);

#endif
