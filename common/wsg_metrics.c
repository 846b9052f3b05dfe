/* wsg_metrics: atomic counters, gauges and histograms rendered as Prometheus text (see
 * wsg_metrics.h). */
#include "wsg_metrics.h"
#include "wsg_heap.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Decimal digits of per_unit when it is a power of ten (1 -> 0, 1000000 -> 6), else -1. */
static int pow10_digits(int64_t per_unit)
{
    int d = 0;
    if (per_unit < 1)
        return -1;
    for (; per_unit > 1; per_unit /= 10, d++) {
        if (per_unit % 10)
            return -1;
    }
    return d;
}

static int buckets_valid(const wsg_metric_buckets *b)
{
    if (!b || !b->le || b->n == 0 || pow10_digits(b->per_unit) < 0)
        return 0;
    for (size_t i = 1; i < b->n; i++) {
        if (b->le[i] <= b->le[i - 1])
            return 0;
    }
    return 1;
}

int wsg_metrics_init(wsg_metrics *m, const wsg_metric_desc *desc, size_t n)
{
    return wsg_metrics_init_hist(m, desc, NULL, n);
}

int wsg_metrics_init_hist(wsg_metrics *m, const wsg_metric_desc *desc,
                          const wsg_metric_buckets *const *bounds, size_t n)
{
    memset(m, 0, sizeof(*m));
    size_t nbuckets = 0;
    m->first_bucket = calloc(n ? n : 1, sizeof(*m->first_bucket));
    if (!m->first_bucket)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (desc[i].kind != WSG_METRIC_HISTOGRAM)
            continue;
        if (!bounds || !buckets_valid(bounds[i]))
            goto fail;
        m->first_bucket[i] = nbuckets;
        nbuckets += bounds[i]->n + 1; /* + the +Inf bucket */
    }
    m->vals = calloc(n ? n : 1, sizeof(*m->vals));
    m->buckets = calloc(nbuckets ? nbuckets : 1, sizeof(*m->buckets));
    if (!m->vals || !m->buckets)
        goto fail;
    for (size_t i = 0; i < n; i++)
        atomic_init(&m->vals[i], 0);
    for (size_t i = 0; i < nbuckets; i++)
        atomic_init(&m->buckets[i], 0);
    m->desc = desc;
    m->bounds = bounds;
    m->n = n;
    m->nbuckets = nbuckets;
    atomic_init(&m->shards, NULL);
    return 0;
fail:
    wsg_metrics_free(m);
    return -1;
}

void wsg_metrics_free(wsg_metrics *m)
{
    wsg_metrics_shard *s = m->vals ? atomic_load(&m->shards) : NULL;
    while (s) {
        wsg_metrics_shard *next = s->next;
        free((void *)s->vals);
        free(s);
        s = next;
    }
    free((void *)m->vals);
    free((void *)m->buckets);
    free(m->first_bucket);
    memset(m, 0, sizeof(*m));
}

static size_t bucket_index(const wsg_metric_buckets *b, int64_t v)
{
    size_t i = 0;
    /* A dozen or so bounds: a linear scan touches one cache line and beats a search. */
    while (i < b->n && v > b->le[i])
        i++;
    return i;
}

void wsg_metrics_observe(wsg_metrics *m, size_t id, int64_t v)
{
    size_t i = bucket_index(m->bounds[id], v);
    atomic_fetch_add_explicit(&m->buckets[m->first_bucket[id] + i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->vals[id], v, memory_order_relaxed);
}

#define SHARD_LINE 64

wsg_metrics_shard *wsg_metrics_shard_new(wsg_metrics *m)
{
    wsg_metrics_shard *s = calloc(1, sizeof(*s));
    /* One block for values and buckets, whole cache lines, so that no line holds another
     * shard's counts (or the shard header the scrape walks). */
    size_t bytes = (m->n + m->nbuckets) * sizeof(int64_t);
    bytes = (bytes + SHARD_LINE - 1) / SHARD_LINE * SHARD_LINE;
    _Atomic int64_t *block = s ? aligned_alloc(SHARD_LINE, bytes ? bytes : SHARD_LINE) : NULL;
    if (!block) {
        free(s);
        return NULL;
    }
    for (size_t i = 0; i < m->n + m->nbuckets; i++)
        atomic_init(&block[i], 0);
    s->vals = block;
    s->buckets = block + m->n;
    s->m = m;
    s->next = atomic_load_explicit(&m->shards, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&m->shards, &s->next, s, memory_order_release,
                                                  memory_order_relaxed))
        ;
    return s;
}

void wsg_metrics_shard_observe(wsg_metrics_shard *s, size_t id, int64_t v)
{
    const wsg_metrics *m = s->m;
    _Atomic int64_t *slot = &s->buckets[m->first_bucket[id] + bucket_index(m->bounds[id], v)];
    atomic_store_explicit(slot, atomic_load_explicit(slot, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    wsg_metrics_shard_add(s, id, v);
}

static const wsg_metrics_shard *first_shard(const wsg_metrics *m)
{
    return atomic_load_explicit(&((wsg_metrics *)m)->shards, memory_order_acquire);
}

int64_t wsg_metrics_value(const wsg_metrics *m, size_t id)
{
    int64_t v = wsg_metrics_get(m, id);
    for (const wsg_metrics_shard *s = first_shard(m); s; s = s->next)
        v += atomic_load_explicit(&s->vals[id], memory_order_relaxed);
    return v;
}

/* Bucket `slot` (an index into buckets) summed over the shared part and every shard. */
static int64_t bucket_value(const wsg_metrics *m, size_t slot)
{
    int64_t v = atomic_load_explicit(&m->buckets[slot], memory_order_relaxed);
    for (const wsg_metrics_shard *s = first_shard(m); s; s = s->next)
        v += atomic_load_explicit(&s->buckets[slot], memory_order_relaxed);
    return v;
}

int64_t wsg_metrics_count(const wsg_metrics *m, size_t id)
{
    const wsg_metric_buckets *b = m->bounds[id];
    int64_t total = 0;
    for (size_t i = 0; i <= b->n; i++)
        total += bucket_value(m, m->first_bucket[id] + i);
    return total;
}

/* HELP text escapes backslash and newline, as the exposition format requires. */
static void put_help(wsg_buf *out, const char *help)
{
    for (const char *p = help ? help : ""; *p; p++) {
        if (*p == '\\')
            wsg_buf_puts(out, "\\\\");
        else if (*p == '\n')
            wsg_buf_puts(out, "\\n");
        else
            wsg_buf_append(out, p, 1);
    }
}

/* v / per_unit as an exact decimal without trailing zeros ("0.0005", "10", "-1.5"): a
 * printf %g would round long sums and print bounds as 5e-04. */
static void put_decimal(wsg_buf *out, int64_t v, int64_t per_unit)
{
    int digits = pow10_digits(per_unit);
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t whole = mag / (uint64_t)per_unit, frac = mag % (uint64_t)per_unit;
    wsg_buf_printf(out, "%s%" PRIu64, v < 0 ? "-" : "", whole);
    if (frac == 0)
        return;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    wsg_buf_printf(out, ".%0*" PRIu64, digits, frac);
}

static const char *type_name(wsg_metric_kind k)
{
    switch (k) {
    case WSG_METRIC_COUNTER:
        return "counter";
    case WSG_METRIC_GAUGE:
        return "gauge";
    case WSG_METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

/* name{labels,le="..."} for one bucket: the caller's labels come first. */
static void put_bucket_name(wsg_buf *out, const wsg_metric_desc *d)
{
    wsg_buf_printf(out, "%s_bucket{", d->name);
    if (d->labels && *d->labels)
        wsg_buf_printf(out, "%s,", d->labels);
    wsg_buf_puts(out, "le=\"");
}

static void render_histogram(const wsg_metrics *m, size_t id, wsg_buf *out)
{
    const wsg_metric_desc *d = &m->desc[id];
    const wsg_metric_buckets *b = m->bounds[id];
    const char *l = d->labels && *d->labels ? d->labels : NULL;
    int64_t cum = 0;
    for (size_t i = 0; i <= b->n; i++) {
        cum += bucket_value(m, m->first_bucket[id] + i);
        put_bucket_name(out, d);
        if (i < b->n)
            put_decimal(out, b->le[i], b->per_unit);
        else
            wsg_buf_puts(out, "+Inf");
        wsg_buf_printf(out, "\"} %" PRId64 "\n", cum);
    }
    wsg_buf_printf(out, "%s_sum%s%s%s ", d->name, l ? "{" : "", l ? l : "", l ? "}" : "");
    put_decimal(out, wsg_metrics_value(m, id), b->per_unit);
    wsg_buf_printf(out, "\n%s_count%s%s%s %" PRId64 "\n", d->name, l ? "{" : "", l ? l : "",
                   l ? "}" : "", cum);
}

void wsg_metrics_render(const wsg_metrics *m, wsg_buf *out)
{
    for (size_t i = 0; i < m->n; i++) {
        const wsg_metric_desc *d = &m->desc[i];
        if (i == 0 || strcmp(d->name, m->desc[i - 1].name) != 0) {
            wsg_buf_printf(out, "# HELP %s ", d->name);
            put_help(out, d->help);
            wsg_buf_printf(out, "\n# TYPE %s %s\n", d->name, type_name(d->kind));
        }
        if (d->kind == WSG_METRIC_HISTOGRAM) {
            render_histogram(m, i, out);
            continue;
        }
        int64_t v = wsg_metrics_value(m, i);
        if (d->labels && *d->labels)
            wsg_buf_printf(out, "%s{%s} %" PRId64 "\n", d->name, d->labels, v);
        else
            wsg_buf_printf(out, "%s %" PRId64 "\n", d->name, v);
    }
}

static void put_process_series(wsg_buf *out, const char *name, const char *type,
                               const char *help, const char *value)
{
    wsg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type, name,
                   value);
}

/* Resident set size from /proc/self/statm (its second field, in pages). */
static int resident_bytes(uint64_t *out)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    unsigned long long size, resident;
    int ok = fscanf(f, "%llu %llu", &size, &resident) == 2;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (!ok || page <= 0)
        return -1;
    *out = (uint64_t)resident * (uint64_t)page;
    return 0;
}

static int open_fds(uint64_t *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    *out = n ? n - 1 : 0; /* the directory stream's own descriptor is not the process's */
    return 0;
}

/* Start time: field 22 of /proc/self/stat (clock ticks after boot) plus the boot time in
 * /proc/stat. The command name (field 2) may hold spaces, so fields count from its ')'. */
static int start_time_seconds(double *out)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ticks = 0;
    /* after ')': state is field 3, so starttime (22) is the 20th token */
    for (int field = 3; p && field <= 22; field++) {
        p = strchr(p + 1, ' ');
        if (p && field == 22)
            ticks = strtoull(p + 1, NULL, 10);
    }
    if (!p || !ticks)
        return -1;
    f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long btime = 0;
    char line[256];
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    }
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (!btime || hz <= 0)
        return -1;
    *out = (double)btime + (double)ticks / (double)hz;
    return 0;
}

void wsg_metrics_render_process(wsg_buf *out)
{
    char v[64];
    uint64_t u;
    double d;
    if (resident_bytes(&u) == 0) {
        snprintf(v, sizeof(v), "%" PRIu64, u);
        put_process_series(out, "process_resident_memory_bytes", "gauge",
                           "Resident memory size in bytes", v);
    }
    if (open_fds(&u) == 0) {
        snprintf(v, sizeof(v), "%" PRIu64, u);
        put_process_series(out, "process_open_fds", "gauge", "Open file descriptors", v);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)rl.rlim_cur);
        put_process_series(out, "process_max_fds", "gauge",
                           "Maximum number of open file descriptors", v);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                     ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
        snprintf(v, sizeof(v), "%.6f", cpu);
        put_process_series(out, "process_cpu_seconds_total", "counter",
                           "User and system CPU time spent in seconds", v);
    }
    wsg_heap_stats hs;
    if (wsg_heap_stats_get(&hs) == 0) {
        /* RSS minus in_use is what the allocator and the libraries hold: a leak grows
         * in_use, a burst's high-water mark grows only free (see wsg_heap.h) */
        wsg_buf_printf(out,
                       "# HELP wsgate_heap_bytes C heap: bytes allocated (in_use) and held "
                       "free by the allocator (free)\n# TYPE wsgate_heap_bytes gauge\n"
                       "wsgate_heap_bytes{state=\"in_use\"} %" PRIu64 "\n"
                       "wsgate_heap_bytes{state=\"free\"} %" PRIu64 "\n",
                       hs.in_use, hs.free);
    }
    if (start_time_seconds(&d) == 0) {
        snprintf(v, sizeof(v), "%.2f", d);
        put_process_series(out, "process_start_time_seconds", "gauge",
                           "Start time of the process since the Unix epoch in seconds", v);
    }
}
