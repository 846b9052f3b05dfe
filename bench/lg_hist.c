#include "lg_hist.h"

#include <stdlib.h>

#define SUB_BITS 7
#define SUB (1u << SUB_BITS)
#define MAX_SHIFT 30 /* values up to 2^(30+7) */
#define NBUCKETS ((MAX_SHIFT + 2) * SUB)

struct lg_hist {
    uint64_t counts[NBUCKETS];
    uint64_t total;
    int64_t max;
    double sum;
};

lg_hist *lg_hist_new(void) { return calloc(1, sizeof(lg_hist)); }

void lg_hist_free(lg_hist *h) { free(h); }

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - (SUB_BITS - 1u); /* >= 1 */
    if (shift > MAX_SHIFT)
        return NBUCKETS - 1;
    /* v >> shift lies in [64, 128): its low 6 bits plus the shift pick the bucket; two
     * halves per shift keep the index dense. */
    return shift * (SUB / 2) + (unsigned)(v >> shift) + 0u;
}

/* Middle of a bucket's range: the value reported for everything recorded in it. */
static int64_t value_of(unsigned b)
{
    if (b < SUB)
        return (int64_t)b;
    for (unsigned shift = 1; shift <= MAX_SHIFT; shift++) {
        unsigned base = shift * (SUB / 2);
        if (b >= base + SUB / 2 && b < base + SUB) {
            uint64_t lo = (uint64_t)(b - base) << shift;
            return (int64_t)(lo + ((1ull << shift) >> 1));
        }
    }
    return INT64_MAX;
}

void lg_hist_record(lg_hist *h, int64_t us)
{
    uint64_t v = us < 0 ? 0 : (uint64_t)us;
    h->counts[bucket_of(v)]++;
    h->total++;
    h->sum += (double)v;
    if ((int64_t)v > h->max)
        h->max = (int64_t)v;
}

void lg_hist_merge(lg_hist *into, const lg_hist *from)
{
    for (unsigned i = 0; i < NBUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t lg_hist_count(const lg_hist *h) { return h->total; }

int64_t lg_hist_max(const lg_hist *h) { return h->max; }

double lg_hist_mean(const lg_hist *h) { return h->total ? h->sum / (double)h->total : 0.0; }

int64_t lg_hist_quantile(const lg_hist *h, double q)
{
    if (!h->total)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->total + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            int64_t v = value_of(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
