/* lg_hist: a latency histogram with log-linear buckets (HDR-style) for the load generator.
 *
 * Values are microseconds from 0 to 2^37 µs (~38 h; larger values land in the top bucket).
 * Below 128 µs every value has its own bucket; above, each power of two is split into 64
 * buckets and a bucket reports its middle, so a value is reported within 0.8 % of itself.
 * Recording is O(1) and never allocates; histograms are merged by adding counts. */
#ifndef LG_HIST_H
#define LG_HIST_H
#include <stdint.h>

typedef struct lg_hist lg_hist;

lg_hist *lg_hist_new(void);             /* NULL when out of memory */
void lg_hist_free(lg_hist *h);          /* NULL is fine */
void lg_hist_record(lg_hist *h, int64_t us);   /* negative values count as 0 */
void lg_hist_merge(lg_hist *into, const lg_hist *from);
uint64_t lg_hist_count(const lg_hist *h);
/* The value at quantile q (0..1]; 0 when empty. The exact maximum is kept separately. */
int64_t lg_hist_quantile(const lg_hist *h, double q);
int64_t lg_hist_max(const lg_hist *h);
double lg_hist_mean(const lg_hist *h);

#endif
