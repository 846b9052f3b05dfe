/* rt_status: the router's HTTP status: /health (JSON: NATS, Redis, registry counts), /ready
 * (NATS connected and the registry loaded, else 503 with the reason) and /metrics (Prometheus
 * text), and the gauges those and the loop keep current. */
#ifndef RT_STATUS_H
#define RT_STATUS_H
#include "rt_ctx.h"
#include "rt_hist_serve.h"
#include "rt_members.h"
#include "wsg_buf.h"

typedef struct rt_status rt_status;

/* NULL on ENOMEM. c, mb and hs must outlive it. */
rt_status *rt_status_new(rt_ctx *c, const rt_members *mb, const rt_hist_serve *hs);
void rt_status_free(rt_status *st);
/* Sets the registry, ring and offline-budget gauges. */
void rt_status_gauges(rt_status *st);
/* rt_loop HTTP hooks (arg: the rt_status): fill out with the body, return the HTTP status. */
int rt_status_health(void *arg, wsg_buf *out);
int rt_status_ready(void *arg, wsg_buf *out);
int rt_status_metrics(void *arg, wsg_buf *out);

#endif
