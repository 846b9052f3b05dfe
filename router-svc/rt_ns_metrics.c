/* rt_ns_metrics: a wsg_metrics table made from the namespaces. */
#include "rt_ns_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsg_metrics.h"

#define NAME "wsgate_router_publications_total"
#define HELP "Publications routed to channels (client publish, Delivery.channel), by namespace"
/* namespace="<name>": names are channel characters ([A-Za-z0-9_.@-], no quote or backslash) */
#define LABEL_MAX (sizeof("namespace=\"\"") + WSG_CHANNEL_MAX)

struct rt_ns_metrics {
    const wsg_ns_table *t;
    size_t n;
    wsg_metric_desc *desc;
    char (*labels)[LABEL_MAX];
    wsg_metrics m;
};

rt_ns_metrics *rt_ns_metrics_new(const wsg_ns_table *t)
{
    rt_ns_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->t = t;
    m->n = t ? wsg_ns_count(t) : 0;
    if (m->n) {
        m->desc = calloc(m->n, sizeof(*m->desc));
        m->labels = calloc(m->n, sizeof(*m->labels));
        if (!m->desc || !m->labels)
            goto fail;
        for (size_t i = 0; i < m->n; i++) {
            const char *name = wsg_ns_at(t, i)->name;
            snprintf(m->labels[i], LABEL_MAX, "namespace=\"%s\"", *name ? name : "_default");
            m->desc[i] = (wsg_metric_desc){NAME, m->labels[i], WSG_METRIC_COUNTER, HELP};
        }
        if (wsg_metrics_init(&m->m, m->desc, m->n))
            goto fail;
    }
    return m;
fail:
    rt_ns_metrics_free(m);
    return NULL;
}

void rt_ns_metrics_free(rt_ns_metrics *m)
{
    if (!m)
        return;
    wsg_metrics_free(&m->m);
    free(m->desc);
    free(m->labels);
    free(m);
}

/* The index of the namespace ns in the table (wsg_ns_at order), or -1. */
static long index_of(const rt_ns_metrics *m, const wsg_ns *ns)
{
    for (size_t i = 0; ns && i < m->n; i++)
        if (wsg_ns_at(m->t, i) == ns)
            return (long)i;
    return -1;
}

void rt_ns_metrics_publication(rt_ns_metrics *m, const char *channel)
{
    if (!m->n)
        return;
    long i = index_of(m, wsg_ns_find(m->t, channel, strlen(channel)));
    if (i >= 0)
        wsg_metrics_add(&m->m, (size_t)i, 1);
}

int64_t rt_ns_metrics_get(const rt_ns_metrics *m, const char *ns_name)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(wsg_ns_at(m->t, i)->name, ns_name))
            return wsg_metrics_get(&m->m, i);
    return -1;
}

void rt_ns_metrics_render(const rt_ns_metrics *m, wsg_buf *out)
{
    if (m->n)
        wsg_metrics_render(&m->m, out);
}
