#include "lg_proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct lg_proc {
    int npids;
    int pids[LG_PROC_MAX_PIDS];
    int64_t peak_rss_kib[LG_PROC_MAX_PIDS];
};

lg_proc *lg_proc_new(const int *pids, int npids)
{
    if (npids < 0 || npids > LG_PROC_MAX_PIDS)
        return NULL;
    lg_proc *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->npids = npids;
    memcpy(p->pids, pids, sizeof(int) * (size_t)npids);
    return p;
}

void lg_proc_free(lg_proc *p) { free(p); }

int lg_proc_npids(const lg_proc *p) { return p->npids; }

int lg_proc_pid(const lg_proc *p, int i) { return p->pids[i]; }

static int64_t read_rss_kib(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[256];
    int64_t kib = -1;
    while (fgets(line, sizeof(line), f)) {
        long long v;
        if (sscanf(line, "VmRSS: %lld kB", &v) == 1) {
            kib = v;
            break;
        }
    }
    fclose(f);
    return kib;
}

static int64_t read_cpu_ticks(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: fields resume after the
     * last ')'. utime and stime are fields 14 and 15, i.e. the 12th and 13th after it. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut, st;
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)(ut + st);
}

int lg_proc_sample_now(lg_proc *p, lg_proc_sample *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    out->at_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    int failed = 0;
    for (int i = 0; i < p->npids; i++) {
        out->rss_kib[i] = read_rss_kib(p->pids[i]);
        out->cpu_ticks[i] = read_cpu_ticks(p->pids[i]);
        if (out->rss_kib[i] < 0 || out->cpu_ticks[i] < 0)
            failed++;
        if (out->rss_kib[i] > p->peak_rss_kib[i])
            p->peak_rss_kib[i] = out->rss_kib[i];
    }
    return failed;
}

int64_t lg_proc_peak_rss_kib(const lg_proc *p, int i) { return p->peak_rss_kib[i]; }

double lg_proc_cpu_pct(const lg_proc_sample *a, const lg_proc_sample *b, int i)
{
    if (a->cpu_ticks[i] < 0 || b->cpu_ticks[i] < 0 || b->at_us <= a->at_us)
        return -1.0;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    double cpu_s = (double)(b->cpu_ticks[i] - a->cpu_ticks[i]) / (double)hz;
    return 100.0 * cpu_s / ((double)(b->at_us - a->at_us) / 1e6);
}

int64_t lg_proc_total_rss_kib(const lg_proc *p, const lg_proc_sample *s)
{
    int64_t t = 0;
    for (int i = 0; i < p->npids; i++)
        if (s->rss_kib[i] > 0)
            t += s->rss_kib[i];
    return t;
}
