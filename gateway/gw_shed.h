/* gw_shed: which of a worker's connections are closed when the node's outbound queues exceed
 * the memory budget. Every worker closes its own longest queues (the slowest readers, who can
 * resume) in proportion to its share of the excess, down to 90% of the budget so that the
 * node does not hover at the limit. The worker decides when (gw_worker_over_budget); this
 * module decides whom. On the worker's thread only. */
#ifndef GW_SHED_H
#define GW_SHED_H
#include <stddef.h>
#include <stdint.h>

#include "gw_conn.h"

/* How many of a worker's queues, sorted longest first (bytes[0..k)), must go so that it
 * frees its share of the excess: mine of the node's total queued bytes, against budget. */
size_t gw_shed_count(const size_t *bytes, size_t k, size_t mine, int64_t total, int64_t budget);

/* Sheds (gw_conn_shed) the longest queues among conns (the worker's uthash of connections)
 * as gw_shed_count says, given the node's total queued bytes. Nothing when total is within
 * budget; nothing either if memory for the list runs out (the next check tries again). */
void gw_shed_run(gw_worker *w, gw_conn *conns, int64_t total, int64_t budget);

#endif
