/* wsg_metrics: atomic counters and gauges rendered as Prometheus text (see wsg_metrics.h). */
#include "wsg_metrics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int wsg_metrics_init(wsg_metrics *m, const wsg_metric_desc *desc, size_t n)
{
    m->desc = desc;
    m->n = n;
    m->vals = calloc(n ? n : 1, sizeof(*m->vals));
    if (!m->vals)
        return -1;
    for (size_t i = 0; i < n; i++)
        atomic_init(&m->vals[i], 0);
    return 0;
}

void wsg_metrics_free(wsg_metrics *m)
{
    free((void *)m->vals);
    m->vals = NULL;
    m->desc = NULL;
    m->n = 0;
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

void wsg_metrics_render(const wsg_metrics *m, wsg_buf *out)
{
    for (size_t i = 0; i < m->n; i++) {
        const wsg_metric_desc *d = &m->desc[i];
        if (i == 0 || strcmp(d->name, m->desc[i - 1].name) != 0) {
            wsg_buf_printf(out, "# HELP %s ", d->name);
            put_help(out, d->help);
            wsg_buf_printf(out, "\n# TYPE %s %s\n", d->name,
                           d->kind == WSG_METRIC_COUNTER ? "counter" : "gauge");
        }
        int64_t v = wsg_metrics_get(m, i);
        if (d->labels && *d->labels)
            wsg_buf_printf(out, "%s{%s} %" PRId64 "\n", d->name, d->labels, v);
        else
            wsg_buf_printf(out, "%s %" PRId64 "\n", d->name, v);
    }
}
