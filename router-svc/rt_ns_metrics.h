/* rt_ns_metrics: wsgate_router_publications_total{namespace}, one counter per configured
 * channel namespace (label value "_default" for the default namespace ""), counting the
 * publications routed to channels — clients' publish frames and services' Delivery.channel.
 * The router's metric table (rt_metrics) is static and the namespaces are configuration, so
 * this module builds a descriptor table of its own from the namespace table at start and
 * renders it after the static one. Counting is a relaxed atomic (any thread); the table is
 * immutable once made. */
#ifndef RT_NS_METRICS_H
#define RT_NS_METRICS_H
#include <stdint.h>
#include "wsg_buf.h"
#include "wsg_channel.h"

typedef struct rt_ns_metrics rt_ns_metrics;

/* t may be NULL (no namespaces: no series). NULL on ENOMEM. t must outlive the result. */
rt_ns_metrics *rt_ns_metrics_new(const wsg_ns_table *t);
void rt_ns_metrics_free(rt_ns_metrics *m);
/* One publication to channel; a channel outside every namespace counts nowhere. */
void rt_ns_metrics_publication(rt_ns_metrics *m, const char *channel);
/* The count of namespace ns_name ("" for the default one); -1 if it is not configured. */
int64_t rt_ns_metrics_get(const rt_ns_metrics *m, const char *ns_name);
/* Appends the family (# HELP / # TYPE once, then a series per namespace). */
void rt_ns_metrics_render(const rt_ns_metrics *m, wsg_buf *out);

#endif
