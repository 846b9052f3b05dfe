/* lg_proc: samples the resident memory and CPU time of server processes from /proc, so the
 * load generator can report what a scenario cost the servers it drove.
 *
 * A sample reads /proc/PID/status (VmRSS) and /proc/PID/stat (utime + stime) of every
 * watched pid. The module keeps each pid's peak RSS; CPU use between two samples is the
 * difference of their CPU times over the wall time between them. */
#ifndef LG_PROC_H
#define LG_PROC_H
#include <stdint.h>

#define LG_PROC_MAX_PIDS 64

typedef struct lg_proc_sample {
    int64_t at_us;                         /* monotonic */
    int64_t rss_kib[LG_PROC_MAX_PIDS];     /* -1: the pid could not be read */
    int64_t cpu_ticks[LG_PROC_MAX_PIDS];   /* utime + stime, clock ticks; -1 unreadable */
} lg_proc_sample;

typedef struct lg_proc lg_proc;

/* Returns NULL when out of memory; npids <= LG_PROC_MAX_PIDS. */
lg_proc *lg_proc_new(const int *pids, int npids);
void lg_proc_free(lg_proc *p);
int lg_proc_npids(const lg_proc *p);
int lg_proc_pid(const lg_proc *p, int i);
/* Reads every pid now, updates the peaks. Returns the number of pids that could not be read. */
int lg_proc_sample_now(lg_proc *p, lg_proc_sample *out);
int64_t lg_proc_peak_rss_kib(const lg_proc *p, int i);
/* CPU use of pid i between two samples, in percent of one core; -1 if unknown. */
double lg_proc_cpu_pct(const lg_proc_sample *a, const lg_proc_sample *b, int i);
/* Sum of RSS over every pid that could be read in the sample. */
int64_t lg_proc_total_rss_kib(const lg_proc *p, const lg_proc_sample *s);

#endif
